#!/usr/bin/python3
"""A Hugging Face Llama folder (config.json + safetensors) as a GGUF file for llama.cpp, for the
side-by-side benchmark (scripts/bench_llamacpp.sh, docs/benchmarks.md).

    scripts/convert_gguf.py MODEL_DIR OUT.gguf [--dtype float32|bfloat16]

Written from the GGUF format description (version 3: header, key-value metadata, tensor infos,
32-byte aligned data); it needs only Debian's python3-numpy. The weights are the model's; query
and key projections are reordered from Hugging Face's rotate-half layout to the interleaved pairs
llama.cpp rotates. The vocabulary is placeholders of the model's size (<unk>, <s>, </s>, the 256
byte tokens, then "t<id>"): the file times the model and scores token ids exactly, but it does not
turn text into the model's tokens. Norm weights stay float32, as llama.cpp expects.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

GGUF_MAGIC = 0x46554747  # "GGUF"
ALIGN = 32
T_UINT32, T_INT32, T_FLOAT32, T_STRING, T_ARRAY = 4, 5, 6, 8, 9
GGML_F32, GGML_BF16 = 0, 30
FILE_TYPE = {"float32": 0, "bfloat16": 32}


def die(msg):
    sys.stderr.write(f"convert_gguf.py: {msg}\n")
    sys.exit(2)


def read_safetensors(path):
    """name -> float32 array of every tensor in one .safetensors file."""
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        die(f"{path}: header length {n} past the end of the file ({len(data)} bytes)")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        raw = data[base + lo:base + hi]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            die(f"{path}: tensor {name} has dtype {dt} (supported: F32, F16, BF16)")
        out[name] = a.reshape(info["shape"])
    return out


def read_model(d):
    index = d / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    tensors = {}
    for f in files:
        if not (d / f).exists():
            die(f"{d / f} not found")
        tensors.update(read_safetensors(d / f))
    return tensors


def to_bf16(a):
    """float32 -> bfloat16 bits, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def rope_interleave(w, n_head):
    """Rows of a q/k projection from rotate-half order to llama.cpp's interleaved pairs."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def tensor(self, name, array, ggml_type):
        self.tensors.append((name, array, ggml_type))

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, v):
        if vtype == T_UINT32:
            return struct.pack("<I", v)
        if vtype == T_INT32:
            return struct.pack("<i", v)
        if vtype == T_FLOAT32:
            return struct.pack("<f", v)
        if vtype == T_STRING:
            return self._str(v)
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(self._value(etype, x) for x in items)

    def write(self, path):
        head = struct.pack("<IIQQ", GGUF_MAGIC, 3, len(self.tensors), len(self.kv))
        for key, vtype, value in self.kv:
            head += self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value)
        blobs, offset = [], 0
        for name, array, ggml_type in self.tensors:
            blob = (to_bf16(array) if ggml_type == GGML_BF16 else np.ascontiguousarray(array, dtype="<f4")).tobytes()
            dims = list(reversed(array.shape))  # ggml's ne: innermost dimension first
            head += self._str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", n) for n in dims)
            head += struct.pack("<IQ", ggml_type, offset)
            pad = (-len(blob)) % ALIGN
            blobs.append(blob + b"\0" * pad)
            offset += len(blob) + pad
        head += b"\0" * ((-len(head)) % ALIGN)
        tmp = Path(str(path) + ".partial")
        with open(tmp, "wb") as f:
            f.write(head)
            for b in blobs:
                f.write(b)
        tmp.replace(path)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    dtype = "float32"
    if "--dtype" in argv:
        i = argv.index("--dtype")
        if i + 1 >= len(argv):
            die("--dtype needs float32 or bfloat16")
        dtype = argv[i + 1]
        args = [a for a in args if a != dtype]
    if len(args) != 2 or dtype not in FILE_TYPE:
        die("usage: convert_gguf.py MODEL_DIR OUT.gguf [--dtype float32|bfloat16]")
    d, out = Path(args[0]), Path(args[1])
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        die(f"{cfg_path} not found")
    c = json.loads(cfg_path.read_text())
    if c.get("model_type") not in ("llama", "mistral"):
        die(f"{cfg_path}: model_type {c.get('model_type')!r}: only llama / mistral are converted")
    if c.get("rope_scaling"):
        die(f"{cfg_path}: rope_scaling is not converted (the benchmark uses unscaled models)")
    h, L, n_head = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
    n_kv = c.get("num_key_value_heads", n_head)
    head_dim = c.get("head_dim", h // n_head)
    V = c["vocab_size"]
    t = read_model(d)
    w = Writer()
    w.add("general.architecture", T_STRING, "llama")
    w.add("general.name", T_STRING, d.name)
    w.add("general.file_type", T_UINT32, FILE_TYPE[dtype])
    w.add("general.alignment", T_UINT32, ALIGN)
    w.add("llama.context_length", T_UINT32, c.get("max_position_embeddings", 2048))
    w.add("llama.embedding_length", T_UINT32, h)
    w.add("llama.block_count", T_UINT32, L)
    w.add("llama.feed_forward_length", T_UINT32, c["intermediate_size"])
    w.add("llama.attention.head_count", T_UINT32, n_head)
    w.add("llama.attention.head_count_kv", T_UINT32, n_kv)
    w.add("llama.attention.key_length", T_UINT32, head_dim)
    w.add("llama.attention.value_length", T_UINT32, head_dim)
    w.add("llama.rope.dimension_count", T_UINT32, head_dim)
    w.add("llama.rope.freq_base", T_FLOAT32, float(c.get("rope_theta", 10000.0)))
    w.add("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, float(c.get("rms_norm_eps", 1e-6)))
    w.add("llama.vocab_size", T_UINT32, V)
    if V < 259:
        die(f"{cfg_path}: vocab_size {V} < 259 (the placeholder vocabulary needs 3 specials + 256 bytes)")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [f"t{i}" for i in range(259, V)]
    types = [2, 3, 3] + [6] * 256 + [1] * (V - 259)  # unknown, control, byte, normal
    w.add("tokenizer.ggml.model", T_STRING, "llama")
    w.add("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens))
    w.add("tokenizer.ggml.scores", T_ARRAY, (T_FLOAT32, [0.0] * V))
    w.add("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types))
    w.add("tokenizer.ggml.bos_token_id", T_UINT32, int(c.get("bos_token_id", 1) or 1))
    w.add("tokenizer.ggml.eos_token_id", T_UINT32, int(c.get("eos_token_id", 2) or 2))
    w.add("tokenizer.ggml.unknown_token_id", T_UINT32, 0)

    mat = GGML_BF16 if dtype == "bfloat16" else GGML_F32

    def take(name):
        if name not in t:
            die(f"{d}: tensor {name} not found")
        return t[name]

    w.tensor("token_embd.weight", take("model.embed_tokens.weight"), mat)
    for i in range(L):
        p = f"model.layers.{i}."
        w.tensor(f"blk.{i}.attn_norm.weight", take(p + "input_layernorm.weight"), GGML_F32)
        w.tensor(f"blk.{i}.attn_q.weight", rope_interleave(take(p + "self_attn.q_proj.weight"), n_head), mat)
        w.tensor(f"blk.{i}.attn_k.weight", rope_interleave(take(p + "self_attn.k_proj.weight"), n_kv), mat)
        w.tensor(f"blk.{i}.attn_v.weight", take(p + "self_attn.v_proj.weight"), mat)
        w.tensor(f"blk.{i}.attn_output.weight", take(p + "self_attn.o_proj.weight"), mat)
        w.tensor(f"blk.{i}.ffn_norm.weight", take(p + "post_attention_layernorm.weight"), GGML_F32)
        w.tensor(f"blk.{i}.ffn_gate.weight", take(p + "mlp.gate_proj.weight"), mat)
        w.tensor(f"blk.{i}.ffn_up.weight", take(p + "mlp.up_proj.weight"), mat)
        w.tensor(f"blk.{i}.ffn_down.weight", take(p + "mlp.down_proj.weight"), mat)
    w.tensor("output_norm.weight", take("model.norm.weight"), GGML_F32)
    if "lm_head.weight" in t and not c.get("tie_word_embeddings", False):
        w.tensor("output.weight", t["lm_head.weight"], mat)
    w.write(out)
    print(f"wrote {out} ({dtype}, {len(w.tensors)} tensors)")


if __name__ == "__main__":
    main(sys.argv[1:])
