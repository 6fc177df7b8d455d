// The HDF5 readers behind `lminf analyze` (analysis/report: open_run_file, analyze) and behind resuming
// a streaming run (experiments/tasks/stream_state.h: StreamPoint::load, RunningNll::load), and
// H5Reader itself (framework/io/h5_file.h).
//
// The input is not HDF5 bytes: it describes a file, which H5Writer writes and the readers then open.
// Mutating raw HDF5 would mostly fuzz Debian's libhdf5 (not built with the sanitizers, and not
// lminf's code); a description reaches lminf's own checks of schemas, attributes, dataset names,
// dtypes and shapes. One command a line, fields separated by spaces:
//   g PATH                        a group
//   s OBJECT NAME TEXT...         a string attribute (the rest of the line)
//   i OBJECT NAME INT             an int64 attribute        I OBJECT NAME INT,INT,...  an int64 vector
//   f OBJECT NAME REAL            a float64 attribute       F OBJECT NAME REAL,...     a float64 vector
//   t PATH DTYPE DIMS VALUES      a dataset: DTYPE f32 f64 i64 i32 u8, DIMS "2,3" ("-": a scalar),
//                                 VALUES "1,2.5,..." repeated to fill it (at most 65536 elements)
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "analysis/report/analyze.h"
#include "analysis/report/run_file.h"
#include "experiments/tasks/stream_state.h"
#include "framework/io/h5_file.h"

namespace fs = std::filesystem;
using namespace lminf;

namespace {

std::vector<std::string> csv(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int64_t to_int(const std::string& s) { return std::strtoll(s.c_str(), nullptr, 10); }
double to_real(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

// Writes the file the description asks for; false when the description is unusable.
bool write_described(const std::string& text, const fs::path& path) {
  H5Writer w(path);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string op, obj, name;
    ls >> op >> obj;
    if (op.empty() || obj.empty()) continue;
    if (op == "g") {
      w.create_group(obj);
      continue;
    }
    ls >> name;
    std::string rest;
    std::getline(ls, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    if (op == "s") {
      w.set_attr(obj, name, rest);
    } else if (op == "i") {
      w.set_attr(obj, name, to_int(rest));
    } else if (op == "f") {
      w.set_attr(obj, name, to_real(rest));
    } else if (op == "I") {
      std::vector<int64_t> v;
      for (const auto& x : csv(rest)) v.push_back(to_int(x));
      w.set_attr(obj, name, v);
    } else if (op == "F") {
      std::vector<double> v;
      for (const auto& x : csv(rest)) v.push_back(to_real(x));
      w.set_attr(obj, name, v);
    } else if (op == "t") {
      // here NAME is the dtype and REST "DIMS VALUES"
      static const std::pair<const char*, at::ScalarType> dtypes[] = {
          {"f32", at::kFloat}, {"f64", at::kDouble}, {"i64", at::kLong}, {"i32", at::kInt}, {"u8", at::kByte}};
      at::ScalarType dt = at::kFloat;
      for (const auto& [n, t] : dtypes)
        if (name == n) dt = t;
      std::istringstream rs(rest);
      std::string dims, values;
      rs >> dims >> values;
      std::vector<int64_t> shape;
      int64_t numel = 1;
      if (dims != "-") {
        for (const auto& d : csv(dims)) {
          const int64_t n = to_int(d);
          if (n < 0 || n > 65536) return false;
          shape.push_back(n);
          numel *= n;
          if (numel > 65536) return false;
        }
      }
      std::vector<double> v;
      for (const auto& x : csv(values)) v.push_back(to_real(x));
      if (v.empty()) v.push_back(0);
      at::Tensor t = at::empty({numel}, at::kDouble);
      double* p = t.data_ptr<double>();
      for (int64_t k = 0; k < numel; ++k) p[k] = v[static_cast<size_t>(k) % v.size()];
      w.write(obj, t.to(dt).reshape(shape));
    }
  }
  w.commit();
  return true;
}

// Every group and dataset below `group`, each dataset read whole and by rows.
void walk(const H5Reader& r, const std::string& group, int depth, int& budget) {
  if (depth > 6) return;
  for (const std::string& name : r.list(group)) {
    if (--budget < 0) return;
    const std::string p = group == "/" ? "/" + name : group + "/" + name;
    if (fuzz::guarded([&] { walk(r, p, depth + 1, budget); })) continue;
    fuzz::guarded([&] {
      const std::vector<int64_t> shape = r.shape(p);
      r.read(p);
      if (!shape.empty() && shape[0] > 0) r.read_rows(p, shape[0] / 2, shape[0] - shape[0] / 2);
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  const fs::path path = fuzz::scratch_dir() / "run.h5";
  fs::remove(path);
  const std::string text(reinterpret_cast<const char*>(data), size);
  bool written = false;
  if (!fuzz::guarded([&] { written = write_described(text, path); }) || !written) return 0;

  fuzz::guarded([&] {
    H5Reader r(path);
    int budget = 256;
    walk(r, "/", 0, budget);
    fuzz::guarded([&] { StreamPoint::load(r, path.string()); });
    fuzz::guarded([&] {
      RunningNll n;
      n.load(r);
    });
  });
  fuzz::guarded([&] {
    open_run_file(path, "");
    AnalyzeOptions o;
    o.inputs = {path};
    o.out_dir = fuzz::scratch_dir() / "analysis";
    o.plots = false;
    o.overwrite = true;
    analyze(o);
  });
  return 0;
}
