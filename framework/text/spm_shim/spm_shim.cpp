// liblminf_spm_shim.so: the C interface of spm_shim.h over Debian's libsentencepiece. Links
// sentencepiece only (never libtorch): it is opened in its own link namespace (see spm_shim.h).
#include "framework/text/spm_shim/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

void set_error(char* err, size_t cap, const std::string& msg) {
  if (!err || cap == 0) return;
  const size_t n = msg.size() < cap - 1 ? msg.size() : cap - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

const Processor& proc(const void* model) { return *static_cast<const Processor*>(model); }

int64_t copy_out(const std::string& s, char* out, int64_t cap) {
  const int64_t n = static_cast<int64_t>(s.size());
  if (out && n <= cap) std::memcpy(out, s.data(), s.size());
  return n;
}

}  // namespace

extern "C" {

int lminf_spm_abi_version(void) { return LMINF_SPM_SHIM_ABI; }

void* lminf_spm_load(const char* model_path, char* err, size_t err_cap) {
  try {
    auto p = std::make_unique<Processor>();
    const auto status = p->Load(model_path);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return nullptr;
    }
    return p.release();
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown exception in sentencepiece");
  }
  return nullptr;
}

void lminf_spm_free(void* model) { delete static_cast<Processor*>(model); }

int64_t lminf_spm_encode(const void* model, const char* text, size_t len, int32_t* ids, int64_t cap, char* err,
                         size_t err_cap) {
  try {
    std::vector<int> v;
    const auto status = proc(model).Encode(absl::string_view(text, len), &v);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    const int64_t n = static_cast<int64_t>(v.size());
    if (ids && n <= cap)
      for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(v[static_cast<size_t>(i)]);
    return n;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown exception in sentencepiece");
  }
  return -1;
}

int64_t lminf_spm_decode(const void* model, const int32_t* ids, int64_t n, char* out, int64_t cap, char* err,
                         size_t err_cap) {
  try {
    std::vector<int> v(ids, ids + n);
    std::string s;
    const auto status = proc(model).Decode(v, &s);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    return copy_out(s, out, cap);
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown exception in sentencepiece");
  }
  return -1;
}

int32_t lminf_spm_piece_size(const void* model) { return proc(model).GetPieceSize(); }

int64_t lminf_spm_id_to_piece(const void* model, int32_t id, char* out, int64_t cap) {
  if (id < 0 || id >= proc(model).GetPieceSize()) return -1;
  return copy_out(proc(model).IdToPiece(id), out, cap);
}

int32_t lminf_spm_piece_to_id(const void* model, const char* piece, size_t len) {
  return proc(model).PieceToId(absl::string_view(piece, len));
}

int32_t lminf_spm_bos_id(const void* model) { return proc(model).bos_id(); }
int32_t lminf_spm_eos_id(const void* model) { return proc(model).eos_id(); }
int32_t lminf_spm_unk_id(const void* model) { return proc(model).unk_id(); }
int32_t lminf_spm_pad_id(const void* model) { return proc(model).pad_id(); }
int lminf_spm_is_control(const void* model, int32_t id) { return proc(model).IsControl(id) ? 1 : 0; }
int lminf_spm_is_unknown(const void* model, int32_t id) { return proc(model).IsUnknown(id) ? 1 : 0; }
int lminf_spm_is_byte(const void* model, int32_t id) { return proc(model).IsByte(id) ? 1 : 0; }

int lminf_spm_train(const char* const* keys, const char* const* values, size_t n, char* err, size_t err_cap) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return -1;
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown exception in sentencepiece training");
  }
  return -1;
}

}  // extern "C"
