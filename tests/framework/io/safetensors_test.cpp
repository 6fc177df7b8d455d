#include "framework/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::TempDir;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

const std::vector<at::ScalarType> kAllDtypes = {at::kFloat, at::kHalf,  at::kBFloat16, at::kDouble,
                                                at::kLong,  at::kInt,   at::kShort,    at::kChar,
                                                at::kByte,  at::kBool};

at::Tensor random_tensor(at::ScalarType dtype, at::IntArrayRef shape, at::Generator& gen) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  if (dtype == at::kBool) return at::randint(0, 2, shape, gen, opts).to(at::kBool);
  if (dtype == at::kByte) return at::randint(0, 256, shape, gen, opts).to(dtype);
  if (dtype == at::kChar) return at::randint(-128, 128, shape, gen, opts).to(dtype);
  if (dtype == at::kShort) return at::randint(-32768, 32768, shape, gen, opts).to(dtype);
  if (dtype == at::kInt || dtype == at::kLong)
    return at::randint(-2000000000, 2000000000, shape, gen, opts).to(dtype);
  return (at::randn(shape, gen, opts) * 100).to(dtype);
}

// The exact bytes of a safetensors file: 8-byte length, header text, data.
void write_raw(const fs::path& p, const std::string& header, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Runs fn, expects an lminf::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no Error thrown; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(Safetensors, RoundTripEveryDtypeAndAwkwardShape) {
  TempDir tmp;
  at::Generator gen = at::detail::createCPUGenerator(1234);
  const std::vector<std::vector<int64_t>> shapes = {{3, 1037}, {0, 4}, {}, {5}, {2, 3, 7}};
  Named tensors;
  for (auto dt : kAllDtypes)
    for (size_t s = 0; s < shapes.size(); ++s)
      tensors.emplace_back(std::string(c10::toString(dt)) + "." + std::to_string(s),
                           random_tensor(dt, shapes[s], gen));
  const fs::path p = tmp / "model.safetensors";
  write_safetensors(p, tensors);

  SafetensorsFile f(p);
  ASSERT_EQ(f.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.has(name));
    EXPECT_EQ(f.info(name).scalar_type, t.scalar_type());
    EXPECT_EQ(f.info(name).dtype, safetensors_dtype_name(t.scalar_type()));
    EXPECT_EQ(f.info(name).shape, t.sizes().vec());
    at::Tensor back = f.load(name, t.scalar_type());
    EXPECT_TRUE(back.is_contiguous());
    EXPECT_EQ(back.sizes(), t.sizes());
    EXPECT_TRUE(at::equal(back, t));
  }

  // The data buffer starts 8-byte aligned.
  std::ifstream in(p, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(Safetensors, HalfAndBFloat16LoadAsFloat32LikeTo) {
  TempDir tmp;
  at::Generator gen = at::detail::createCPUGenerator(7);
  at::Tensor h = random_tensor(at::kHalf, {17, 33}, gen);
  at::Tensor b = random_tensor(at::kBFloat16, {17, 33}, gen);
  at::Tensor f32 = random_tensor(at::kFloat, {9}, gen);
  at::Tensor i32 = random_tensor(at::kInt, {9}, gen);
  write_safetensors(tmp / "x.safetensors", {{"h", h}, {"b", b}, {"f", f32}, {"i", i32}});
  SafetensorsFile f(tmp / "x.safetensors");
  EXPECT_TRUE(at::equal(f.load("h", at::kFloat), h.to(at::kFloat)));
  EXPECT_TRUE(at::equal(f.load("b", at::kFloat), b.to(at::kFloat)));
  EXPECT_TRUE(at::equal(f.load("b", at::kDouble), b.to(at::kDouble)));
  EXPECT_TRUE(at::equal(f.load("f", at::kBFloat16), f32.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(f.load("i", at::kLong), i32.to(at::kLong)));
  EXPECT_TRUE(at::equal(f.load("i", at::kDouble), i32.to(at::kDouble)));
  expect_error([&] { f.load("f", at::kLong); }, {"x.safetensors", "tensor 'f'", "F32", "cannot be loaded"});
}

TEST(Safetensors, LoadSliceEqualsNarrowOfTheFullTensor) {
  TempDir tmp;
  at::Generator gen = at::detail::createCPUGenerator(99);
  at::Tensor w = random_tensor(at::kFloat, {7, 13, 5}, gen);
  at::Tensor wb = random_tensor(at::kBFloat16, {6, 10}, gen);
  write_safetensors(tmp / "w.safetensors", {{"w", w}, {"wb", wb}});
  SafetensorsFile f(tmp / "w.safetensors");
  for (int64_t dim = 0; dim < 3; ++dim) {
    const int64_t n = w.size(dim);
    for (auto [start, length] : std::vector<std::pair<int64_t, int64_t>>{{0, n}, {0, 1}, {1, n - 2}, {n - 1, 1}, {2, 0}}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + " start " + std::to_string(start) + " length " + std::to_string(length));
      const uint64_t before = f.bytes_read();
      at::Tensor s = f.load_slice("w", dim, start, length, at::kFloat);
      EXPECT_TRUE(s.is_contiguous());
      EXPECT_TRUE(at::equal(s, w.narrow(dim, start, length)));
      EXPECT_EQ(f.bytes_read() - before, static_cast<uint64_t>(s.numel()) * 4);
    }
  }
  // Tensor-parallel shards of a [out, in] weight: rows (dim 0) and columns (dim 1), converted.
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_TRUE(at::equal(f.load_slice("wb", 0, r * 3, 3, at::kFloat), wb.narrow(0, r * 3, 3).to(at::kFloat)));
    EXPECT_TRUE(at::equal(f.load_slice("wb", 1, r * 5, 5, at::kFloat), wb.narrow(1, r * 5, 5).to(at::kFloat)));
    EXPECT_TRUE(at::equal(f.load_slice("wb", -1, r * 5, 5, at::kBFloat16), wb.narrow(1, r * 5, 5)));
  }
  expect_error([&] { f.load_slice("w", 1, 10, 4, at::kFloat); }, {"w.safetensors", "tensor 'w'", "[7, 13, 5]", "dim 1"});
  expect_error([&] { f.load_slice("w", 3, 0, 1, at::kFloat); }, {"w.safetensors", "tensor 'w'", "no dim 3"});
}

TEST(Safetensors, MetadataRoundTrip) {
  TempDir tmp;
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode \"quoted\""}, {"empty", ""}};
  write_safetensors(tmp / "m.safetensors", {{"a", at::ones({2})}}, meta);
  SafetensorsFile f(tmp / "m.safetensors");
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.names(), std::vector<std::string>{"a"});  // __metadata__ is not a tensor

  write_safetensors(tmp / "none.safetensors", {{"a", at::ones({2})}});
  EXPECT_TRUE(SafetensorsFile(tmp / "none.safetensors").metadata().empty());
}

TEST(Safetensors, NamesSortedAndFileMovable) {
  TempDir tmp;
  write_safetensors(tmp / "s.safetensors", {{"zeta", at::ones({1})}, {"alpha", at::zeros({2})}, {"mid", at::ones({3})}});
  SafetensorsFile f(tmp / "s.safetensors");
  EXPECT_EQ(f.names(), (std::vector<std::string>{"alpha", "mid", "zeta"}));
  EXPECT_FALSE(f.has("beta"));
  SafetensorsFile g(std::move(f));
  EXPECT_TRUE(at::equal(g.load("mid", at::kFloat), at::ones({3})));
  SafetensorsFile h(tmp / "s.safetensors");
  h = std::move(g);
  EXPECT_EQ(h.path(), tmp / "s.safetensors");
  EXPECT_TRUE(at::equal(h.load("alpha", at::kFloat), at::zeros({2})));
}

TEST(Safetensors, UnalignedDataLoads) {
  TempDir tmp;
  // A 13-byte header puts the data buffer at byte 21; the tensor starts at data offset 1 (byte 22).
  const std::vector<float> v = {1.5f, -2.25f, 3.0f, 1e-3f, 7.0f, 8.0f};
  std::string header = R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[1,25]}})";
  write_raw(tmp / "u.safetensors", header, "x" + float_bytes(v));
  SafetensorsFile f(tmp / "u.safetensors");
  at::Tensor expected = at::tensor(at::ArrayRef<float>(v)).view({2, 3});
  EXPECT_TRUE(at::equal(f.load("t", at::kFloat), expected));
  EXPECT_TRUE(at::equal(f.load_slice("t", 1, 1, 2, at::kDouble), expected.narrow(1, 1, 2).to(at::kDouble)));
}

TEST(Safetensors, TruncatedFileIsAnError) {
  TempDir tmp;
  const fs::path p = tmp / "model.safetensors";
  write_safetensors(p, {{"model.norm.weight", at::ones({64})}});
  fs::resize_file(p, fs::file_size(p) - 4);
  expect_error([&] { SafetensorsFile f(p); },
               {p.string(), "tensor 'model.norm.weight'", "data_offsets [0, 256]", "extend past the end of the file",
                "data is 252 bytes", "truncated or corrupt", "re-download"});
}

TEST(Safetensors, HeaderLongerThanTheFileIsAnError) {
  TempDir tmp;
  const fs::path p = tmp / "big.safetensors";
  std::ofstream out(p, std::ios::binary);
  uint64_t n = 1000;
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << "{}";
  out.close();
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "header length 1000 is larger than the file (10 bytes)"});

  // A huge length (e.g. a text file read as safetensors) is caught the same way.
  write_raw(p, "", "");
  std::fstream io(p, std::ios::binary | std::ios::in | std::ios::out);
  uint64_t huge = 0x7b7b7b7b7b7b7b7bull;
  io.write(reinterpret_cast<const char*>(&huge), 8);
  io.close();
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "is larger than the file"});
}

TEST(Safetensors, FileShorterThanEightBytesIsAnError) {
  TempDir tmp;
  const fs::path p = tmp / "short.safetensors";
  lminf::testing::write_text(p, "abc");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "3 bytes", "shorter than the 8-byte"});
  expect_error([&] { SafetensorsFile f(tmp / "absent.safetensors"); }, {"absent.safetensors", "cannot open"});
}

TEST(Safetensors, InvalidJsonIsAnError) {
  TempDir tmp;
  const fs::path p = tmp / "bad.safetensors";
  write_raw(p, R"({"t":{"dtype":"F32",)", "");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "header is not valid JSON"});
  write_raw(p, R"([1, 2])", "");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "header is not a JSON object"});
  write_raw(p, R"({"__metadata__":{"a":1}})", "");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "__metadata__", "'a' is not a string"});
}

TEST(Safetensors, UnknownDtypeIsAnError) {
  TempDir tmp;
  const fs::path p = tmp / "f8.safetensors";
  write_raw(p, R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "tensor 'w'", "dtype 'F8_E4M3'", "BF16"});
}

TEST(Safetensors, OffsetsThatDoNotMatchTheShapeAreAnError) {
  TempDir tmp;
  const fs::path p = tmp / "mismatch.safetensors";
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", float_bytes({1, 2, 3, 4, 5, 6}));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "tensor 'w'", "hold 20 bytes", "[2, 3]", "need 6 x 4"});
  write_raw(p, R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", float_bytes({1, 2, 3, 4, 5, 6}));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "tensor 'w'", "not a non-negative integer"});
  write_raw(p, R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[24,0]}})", float_bytes({1, 2, 3, 4, 5, 6}));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "tensor 'w'", "begin > end"});
  write_raw(p, R"({"w":{"dtype":"F32","shape":[6]}})", float_bytes({1, 2, 3, 4, 5, 6}));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "tensor 'w'", "data_offsets (missing)"});
}

TEST(Safetensors, OverlappingRangesAreAnError) {
  TempDir tmp;
  const fs::path p = tmp / "overlap.safetensors";
  write_raw(p,
            R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
            R"("b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]},)"
            R"("empty":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
            float_bytes({1, 2, 3, 4, 5, 6, 7}));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'a' [0, 16]", "'b' [12, 28]", "overlapping"});

  // Adjacent ranges and an empty tensor inside another's range are fine.
  write_raw(p,
            R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
            R"("b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]},)"
            R"("empty":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
            float_bytes({1, 2, 3, 4, 5, 6, 7}));
  SafetensorsFile f(p);
  EXPECT_TRUE(at::equal(f.load("b", at::kFloat), at::tensor({4.f, 5.f, 6.f, 7.f})));
  EXPECT_EQ(f.load("empty", at::kFloat).numel(), 0);
}

TEST(Safetensors, MissingTensorNameListsCloseNames) {
  TempDir tmp;
  const fs::path p = tmp / "model.safetensors";
  write_safetensors(p, {{"model.layers.0.self_attn.q_proj.weight", at::ones({2})},
                        {"model.layers.0.self_attn.k_proj.weight", at::ones({2})},
                        {"lm_head.weight", at::ones({2})}});
  SafetensorsFile f(p);
  expect_error([&] { f.load("model.layers.0.self_attn.v_proj.weight", at::kFloat); },
               {p.string(), "no tensor 'model.layers.0.self_attn.v_proj.weight'", "closest: 'model.layers.0.self_attn.",
                "check the tensor name"});
}

TEST(Safetensors, WriterRejectsWhatItCannotStoreAndLeavesNoTemporary) {
  TempDir tmp;
  expect_error([&] { write_safetensors(tmp / "c.safetensors", {{"c", at::ones({2}, at::kComplexFloat)}}); },
               {"c.safetensors", "tensor 'c'", "cannot store dtype"});
  expect_error([&] { write_safetensors(tmp / "d.safetensors", {{"a", at::ones({1})}, {"a", at::ones({1})}}); },
               {"d.safetensors", "'a' given twice"});
  // Non-contiguous input is stored contiguous.
  at::Tensor t = at::arange(12, at::kFloat).view({3, 4}).t();
  write_safetensors(tmp / "ok.safetensors", {{"t", t}});
  EXPECT_TRUE(at::equal(SafetensorsFile(tmp / "ok.safetensors").load("t", at::kFloat), t));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(tmp.path())) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"ok.safetensors"});
}

TEST(Safetensors, ReadsTheSharedStories260kFixture) {
  const fs::path dir = fs::path(std::string(LMINF_SHARED_DIR) + "/fixtures/stories260k");
  if (!fs::exists(dir / "model.safetensors")) GTEST_SKIP() << "shared fixtures absent";
  SafetensorsFile f(dir / "model.safetensors");
  ASSERT_TRUE(f.has("model.embed_tokens.weight"));
  ASSERT_TRUE(f.has("model.layers.0.self_attn.k_proj.weight"));
  EXPECT_EQ(f.info("model.embed_tokens.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(f.info("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));

  // The first embedding row equals the raw little-endian bytes at its offset.
  const TensorInfo& ti = f.info("model.embed_tokens.weight");
  ASSERT_EQ(ti.dtype, "F32");
  std::ifstream in(dir / "model.safetensors", std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  in.seekg(static_cast<std::streamoff>(8 + n + ti.begin));
  std::vector<float> row(64);
  in.read(reinterpret_cast<char*>(row.data()), 64 * sizeof(float));
  at::Tensor first = f.load_slice("model.embed_tokens.weight", 0, 0, 1, at::kFloat);
  EXPECT_TRUE(at::equal(first, at::tensor(at::ArrayRef<float>(row)).view({1, 64})));
  EXPECT_EQ(f.bytes_read(), 64u * 4);
  EXPECT_TRUE(at::isfinite(f.load("model.embed_tokens.weight", at::kFloat)).all().item<bool>());
}

}  // namespace
}  // namespace lminf
