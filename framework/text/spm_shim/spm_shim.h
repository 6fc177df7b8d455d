/* The C interface of liblminf_spm_shim.so, a small shared library that links Debian's
 * libsentencepiece (and libsentencepiece_train) and nothing else. lminf opens it with
 * dlmopen(LM_ID_NEWLM, ...) so sentencepiece's private protobuf copy lives in its own link
 * namespace: loaded beside libtorch's protobuf in one namespace, the process crashes at start-up
 * (docs/tokenizers.md). Only plain C types cross the boundary; no memory allocated on one side is
 * freed on the other (each namespace has its own libc/libstdc++): the caller passes buffers in, and
 * every function that fills one returns the size it needed, so a caller retries with a larger
 * buffer when that exceeds the capacity. No C++ exception crosses the boundary: failures return -1
 * (or NULL) with a message copied into `err` (NUL-terminated, truncated to err_cap). */
#ifndef LMINF_SPM_SHIM_H_
#define LMINF_SPM_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature below changes; the loader refuses a shim of another version. */
#define LMINF_SPM_SHIM_ABI 1

int lminf_spm_abi_version(void);

/* A loaded SentencePiece model, or NULL (message in err). */
void* lminf_spm_load(const char* model_path, char* err, size_t err_cap);
void lminf_spm_free(void* model);

/* Encodes `len` bytes of UTF-8 text into at most `cap` ids; returns the number of ids (may exceed
 * cap: call again with a larger buffer), or -1 on error. */
int64_t lminf_spm_encode(const void* model, const char* text, size_t len, int32_t* ids, int64_t cap, char* err,
                         size_t err_cap);
/* Decodes `n` ids into at most `cap` bytes (not NUL-terminated); returns the byte count (may exceed
 * cap), or -1 on error. */
int64_t lminf_spm_decode(const void* model, const int32_t* ids, int64_t n, char* out, int64_t cap, char* err,
                         size_t err_cap);

int32_t lminf_spm_piece_size(const void* model);
/* The piece of `id` copied into at most `cap` bytes; returns its length (may exceed cap), -1 when id
 * is out of range. */
int64_t lminf_spm_id_to_piece(const void* model, int32_t id, char* out, int64_t cap);
/* The id of a piece, or the unk id when the piece is not in the vocabulary. */
int32_t lminf_spm_piece_to_id(const void* model, const char* piece, size_t len);
/* Special ids; -1 when the model has none. */
int32_t lminf_spm_bos_id(const void* model);
int32_t lminf_spm_eos_id(const void* model);
int32_t lminf_spm_unk_id(const void* model);
int32_t lminf_spm_pad_id(const void* model);
/* Piece kinds: 1 when true. */
int lminf_spm_is_control(const void* model, int32_t id);
int lminf_spm_is_unknown(const void* model, int32_t id);
int lminf_spm_is_byte(const void* model, int32_t id);

/* sentencepiece::SentencePieceTrainer::Train with trainer flags as n key/value pairs (the keys of
 * spm_train without "--": input, model_prefix, vocab_size, ...). Pairs rather than one command-line
 * string, because that form splits at spaces and would break paths that hold one. Returns 0, or -1
 * (message in err). */
int lminf_spm_train(const char* const* keys, const char* const* values, size_t n, char* err, size_t err_cap);

#ifdef __cplusplus
}
#endif

#endif /* LMINF_SPM_SHIM_H_ */
