// The needle-in-a-haystack heat map: a value in [0, 1] per (x, y) cell -- accuracy per (prompt
// length, needle depth), or score per (prompt length, task) -- one coloured box per cell (red 0 ..
// green 1, grey: no sample) with the value written in it, drawn by gnuplot from a CSV table in the
// same folder (task passkey's niah.csv, task ruler's ruler.csv).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lminf {

struct NiahHeatmap {
  std::string csv;  // file name, in the plot's folder; columns x index, y index, ... value
  int value_column = 7;  // 1-based column of the value in [0, 1] (nan: no sample)
  std::vector<std::string> x_labels;  // one per x index: prompt lengths
  std::vector<std::string> y_labels;  // one per y index: depths (drawn top = 0 to bottom)
  std::string title;
  std::string x_title = "prompt length (tokens)";
  std::string y_title = "needle depth";
  std::string value_title = "accuracy";  // of the colour box
  std::string source = "task passkey";   // who generated the script (its first comment line)
};

// The gnuplot script that draws `h` into `<stem>.png` and `<stem>.svg` (gnuplot runs in the folder).
std::string niah_heatmap_script(const NiahHeatmap& h, const std::string& stem);

// Runs the script through `gnuplot` (analysis/report/gnuplot.h) in `dir`, keeps it as dir/<stem>.gp, and
// publishes dir/<stem>.png and dir/<stem>.svg atomically (drawn under temporary names, renamed).
// Returns the names of the files written.
std::vector<std::string> plot_niah_heatmap(const std::string& gnuplot, const std::filesystem::path& dir,
                                           const NiahHeatmap& h, const std::string& stem);

}  // namespace lminf
