// Plots through gnuplot (Debian gnuplot-nox), run as a subprocess on a generated script.
#pragma once

#include <filesystem>
#include <string>

namespace lminf {

// The gnuplot executable on PATH, or "" when there is none.
std::string find_gnuplot();

// Writes `script` to script_path (kept beside the plots, so a figure can be restyled by hand) and runs
// `gnuplot script_path` in its folder. Throws with gnuplot's messages when it fails.
void run_gnuplot(const std::string& gnuplot, const std::filesystem::path& script_path, const std::string& script);

// `s` as a gnuplot string literal (double quotes, escaped).
std::string gnuplot_quote(const std::string& s);

}  // namespace lminf
