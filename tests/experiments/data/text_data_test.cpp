// Text corpora: path expansion, the three formats, filters, and bad records (counted, located,
// never fatal) versus bad files (an Error naming the file).
#include <gtest/gtest.h>

#include <zstd.h>

#include "framework/core/error.h"
#include "framework/core/utf8.h"
#include "experiments/data/text_data.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::error_of;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;
namespace fs = std::filesystem;

std::vector<std::string> read_all(DocumentReader& r, std::vector<std::string>* where = nullptr) {
  std::vector<std::string> docs;
  std::string d;
  while (r.next(d)) {
    docs.push_back(d);
    if (where) where->push_back(r.location());
  }
  return docs;
}

std::string zstd_frame(const std::string& s, int level = 3) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), s.data(), s.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TEST(TextData, ExpandsFilesFoldersAndGlobs) {
  TempDir d;
  fs::create_directories(d / "sub" / "deeper");
  fs::create_directories(d / ".hidden");
  write_text(d / "b.jsonl", "");
  write_text(d / "a.jsonl", "");
  write_text(d / "sub" / "deeper" / "c.jsonl", "");
  write_text(d / "sub" / "notes.txt", "");
  write_text(d / ".hidden" / "x.jsonl", "");
  write_text(d / "sub" / "e.jsonl.zst", "");
  auto f = expand_data_path(d.path().string(), "jsonl", "data");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], d / "a.jsonl");
  EXPECT_EQ(f[1], d / "b.jsonl");
  EXPECT_EQ(f[2], d / "sub" / "deeper" / "c.jsonl");
  EXPECT_EQ(expand_data_path(d.path().string(), "jsonl.zst", "data").size(), 1u);
  EXPECT_EQ(expand_data_path(d.path().string(), "text", "data").size(), 5u);  // every non-hidden file
  EXPECT_EQ(expand_data_path((d / "*.jsonl").string(), "jsonl", "data"), (std::vector<fs::path>{d / "a.jsonl", d / "b.jsonl"}));
  EXPECT_NE(error_of([&] { expand_data_path((d / "*.nothing").string(), "text", "data"); }).find("data.path: no file matches"),
            std::string::npos);
  EXPECT_NE(error_of([&] { expand_data_path((d / "absent").string(), "text", "data"); }).find("does not exist"),
            std::string::npos);
  fs::create_directories(d / "empty");
  EXPECT_NE(error_of([&] { expand_data_path((d / "empty").string(), "jsonl", "data"); }).find("holds no *.jsonl files"),
            std::string::npos);
}

TEST(TextData, TextFilesAreDocumentsAndInvalidUtf8IsSkippedWithItsOffset) {
  TempDir d;
  write_text(d / "1.txt", "first document\nwith two lines\n");
  write_text(d / "2.txt", "bad \xC3\x28 byte");
  write_text(d / "3.txt", "third \xE2\x98\x83");
  TextDataOptions o;
  o.format = "text";
  o.path = d.path().string();
  DocumentReader r(o);
  std::vector<std::string> where;
  const auto docs = read_all(r, &where);
  EXPECT_EQ(docs, (std::vector<std::string>{"first document\nwith two lines\n", "third \xE2\x98\x83"}));
  EXPECT_EQ(where[1], (d / "3.txt").string());
  const auto rep = r.report();
  EXPECT_EQ(rep["records"], 3);
  EXPECT_EQ(rep["documents"], 2);
  EXPECT_EQ(rep["skipped"]["invalid UTF-8"], 1);
  const std::string first = rep["first_skipped"][0];
  EXPECT_NE(first.find((d / "2.txt").string() + ": invalid UTF-8 (at byte 4)"), std::string::npos) << first;
}

TEST(TextData, JsonlFieldsFiltersAndBadLines) {
  TempDir d;
  write_text(d / "pile.jsonl",
             "{\"text\": \"an arxiv paper\", \"meta\": {\"pile_set_name\": \"ArXiv\"}}\n"
             "{\"text\": \"a web page\", \"meta\": {\"pile_set_name\": \"OpenWebText2\"}}\n"
             "\n"
             "{\"text\": \"broken\", \"meta\": \n"
             "{\"text\": \"second paper\", \"meta\": {\"pile_set_name\": \"ArXiv\"}}\n"
             "{\"meta\": {\"pile_set_name\": \"ArXiv\"}}\n"
             "{\"text\": 42, \"meta\": {\"pile_set_name\": \"ArXiv\"}}\n"
             "{\"text\": \"bad \xFF utf8\", \"meta\": {\"pile_set_name\": \"ArXiv\"}}\n"
             "[1, 2]\n");
  TextDataOptions o;
  o.format = "jsonl";
  o.path = (d / "pile.jsonl").string();
  o.filter = {{"meta.pile_set_name", "ArXiv"}};
  DocumentReader r(o);
  std::vector<std::string> where;
  EXPECT_EQ(read_all(r, &where), (std::vector<std::string>{"an arxiv paper", "second paper"}));
  EXPECT_EQ(where[1], o.path + ":5");
  const auto rep = r.report();
  EXPECT_EQ(rep["records"], 8);  // the blank line is not a record
  EXPECT_EQ(rep["filtered_out"], 1);
  EXPECT_EQ(rep["skipped"]["malformed JSON"], 1);
  EXPECT_EQ(rep["skipped"]["missing text field"], 1);
  EXPECT_EQ(rep["skipped"]["text field not a string"], 1);
  EXPECT_EQ(rep["skipped"]["invalid UTF-8"], 1);
  EXPECT_EQ(rep["skipped"]["not a JSON object or string"], 1);
  EXPECT_EQ(rep["skipped_total"], 5);
  const std::string first = rep["first_skipped"][0];
  EXPECT_NE(first.find(o.path + ":4: malformed JSON"), std::string::npos) << first;
  EXPECT_NE(rep["first_skipped"][3].get<std::string>().find(":8: invalid UTF-8 (at byte 14 of the line)"), std::string::npos)
      << rep["first_skipped"][3];
}

// Found by fuzz/sequence_source_fuzz.cpp: a line of valid UTF-8 whose JSON breaks at a multi-byte
// character outside a string made the parser's message quote half of that character, so the report
// (results.json) was not valid UTF-8 and writing it threw nlohmann's type_error.
TEST(TextData, MalformedJsonMessagesInTheReportAreValidUtf8) {
  TempDir d;
  write_text(d / "d.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"x\", \xC3\xA9: 1}\n");
  TextDataOptions o;
  o.format = "jsonl";
  o.path = (d / "d.jsonl").string();
  DocumentReader r(o);
  EXPECT_EQ(read_all(r), (std::vector<std::string>{"ok"}));
  const auto rep = r.report();
  EXPECT_EQ(rep["skipped"]["malformed JSON"], 1);
  const std::string first = rep["first_skipped"][0];
  EXPECT_EQ(utf8_invalid_offset(first), std::string::npos) << first;
  EXPECT_NE(first.find(o.path + ":2: malformed JSON"), std::string::npos) << first;
  EXPECT_NO_THROW(rep.dump());
}

TEST(TextData, DottedTextFieldAndStringRecords) {
  TempDir d;
  write_text(d / "a.jsonl", "{\"doc\": {\"body\": \"nested text\"}}\n");
  write_text(d / "b.jsonl", "\"a split Pile line is a JSON string\"\n");
  TextDataOptions o;
  o.format = "jsonl";
  o.path = d.path().string();
  o.text_field = "doc.body";
  DocumentReader r(o);
  EXPECT_EQ(read_all(r), (std::vector<std::string>{"nested text", "a split Pile line is a JSON string"}));
  nlohmann::json j = {{"a", {{"b", {{"c", 1}}}}}};
  EXPECT_EQ(*json_at_path(j, "a.b.c"), 1);
  EXPECT_EQ(json_at_path(j, "a.x"), nullptr);
  EXPECT_EQ(json_at_path(j, "a.b.c.d"), nullptr);
}

TEST(TextData, ZstdStreamsAcrossBlocksAndFrames) {
  TempDir d;
  std::string plain;
  for (int i = 0; i < 3000; ++i)
    plain += "{\"text\": \"document " + std::to_string(i) + " " + std::string(static_cast<size_t>(i % 97), 'x') + "\"}\n";
  const size_t half = plain.find('\n', plain.size() / 2) + 1;
  // two frames, the first cut in the middle of nothing in particular
  write_text(d / "a.jsonl.zst", zstd_frame(plain.substr(0, half)) + zstd_frame(plain.substr(half), 19));
  write_text(d / "a.jsonl", plain);
  TextDataOptions o;
  o.format = "jsonl.zst";
  o.path = (d / "a.jsonl.zst").string();
  DocumentReader z(o);
  o.format = "jsonl";
  o.path = (d / "a.jsonl").string();
  DocumentReader p(o);
  const auto from_zst = read_all(z);
  EXPECT_EQ(from_zst.size(), 3000u);
  EXPECT_EQ(from_zst, read_all(p));
  EXPECT_EQ(z.report()["skipped_total"], 0);
}

TEST(TextData, CorruptOrTruncatedZstdIsAnErrorNamingTheFile) {
  TempDir d;
  const std::string frame = zstd_frame(std::string(5000, 'a') + "\n");
  write_text(d / "t.jsonl.zst", frame.substr(0, frame.size() - 3));
  TextDataOptions o;
  o.format = "jsonl.zst";
  o.path = (d / "t.jsonl.zst").string();
  DocumentReader r(o);
  std::string e = error_of([&] { read_all(r); });
  EXPECT_NE(e.find((d / "t.jsonl.zst").string()), std::string::npos) << e;
  write_text(d / "t.jsonl.zst", "definitely not zstd data");
  DocumentReader r2(o);
  e = error_of([&] { read_all(r2); });
  EXPECT_NE(e.find("corrupt zstd data"), std::string::npos) << e;
}

}  // namespace
}  // namespace lminf
