#!/usr/bin/env python3
"""Makes the safetensors, config and precision fixtures for MisalignCoreTests.

Run from anywhere: python3 Tests/Fixtures/safetensors/make_fixtures.py
Needs: torch, transformers, safetensors, numpy (pip install torch transformers safetensors numpy).

Writes (all small, committed; CI never runs this script):
  Tests/Fixtures/qwen2-small/            a random Qwen2 model in HF layout, f32, one file
      (hidden 64, 2 layers, 4 heads / 2 kv heads, intermediate 128, vocab 512, tied
       embeddings, rope_theta 25000: the shape of ../shared qwen2-tiny with a small vocabulary)
  Tests/Fixtures/qwen2-small-bf16-sharded/  the same weights in bf16, untied head, sharded
      with model.safetensors.index.json, saved by transformers' save_pretrained
  Tests/Fixtures/safetensors/expected_weights.json
      for every tensor of both folders, as read by Python's safetensors and converted to f32
      by torch: dtype, shape, float64 sum, float64 weighted sum sum(v[i] * (i % 97 + 1)),
      the first and last 8 values, and all values of tensors with at most 256 elements
  Tests/Fixtures/safetensors/python_written.safetensors (+ .expected.json)
      tensors of every dtype the library reads, written by safetensors.torch.save_file, with
      the values Python reads back
  Tests/Fixtures/safetensors/conversion.safetensors
      bit patterns for bf16/f16 <-> f32 conversion and torch's / numpy's results
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.dirname(HERE)


def make_models():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-6, rope_theta=25000.0, tie_word_embeddings=True,
        bos_token_id=151643, eos_token_id=151645,
    )
    model = Qwen2ForCausalLM(cfg).float()
    # Non-trivial norms and biases, so a loader that drops or swaps one is caught.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
    out = os.path.join(FIXTURES, "qwen2-small")
    model.save_pretrained(out, safe_serialization=True)

    torch.manual_seed(1)
    cfg2 = Qwen2Config(**{**cfg.to_dict(), "tie_word_embeddings": False})
    model2 = Qwen2ForCausalLM(cfg2).to(torch.bfloat16)
    out2 = os.path.join(FIXTURES, "qwen2-small-bf16-sharded")
    model2.save_pretrained(out2, safe_serialization=True, max_shard_size="40KB")
    for d in (out, out2):
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
    return [out, out2]


def describe(t):
    v = t.to(torch.float64).flatten() if t.is_floating_point() else t.to(torch.float64).flatten()
    w = torch.arange(v.numel(), dtype=torch.float64) % 97 + 1
    d = {
        "sum": float(v.sum()),
        "weighted_sum": float((v * w).sum()),
        "first": [float(x) for x in t.flatten()[:8].float()],
        "last": [float(x) for x in t.flatten()[-8:].float()],
    }
    if v.numel() <= 256:
        d["values"] = [float(x) for x in t.flatten().float()]
    return d


def expected_weights(folders):
    result = {}
    for folder in folders:
        name = os.path.basename(folder)
        entries = {}
        for fn in sorted(os.listdir(folder)):
            if not fn.endswith(".safetensors"):
                continue
            with safe_open(os.path.join(folder, fn), framework="pt") as f:
                for k in f.keys():
                    t = f.get_tensor(k)
                    entries[k] = {"file": fn, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), **describe(t)}
        result[name] = entries
    with open(os.path.join(HERE, "expected_weights.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)


def python_written():
    g = torch.Generator().manual_seed(7)
    tensors = {
        "f32.matrix": torch.randn(3, 5, generator=g),
        "bf16.vector": torch.randn(7, generator=g).to(torch.bfloat16),
        "f16.cube": torch.randn(2, 2, 3, generator=g).to(torch.float16),
        "i64.ids": torch.tensor([0, 1, -1, 151645, 2**40], dtype=torch.int64),
        "i32.small": torch.tensor([[-5, 6], [7, -8]], dtype=torch.int32),
        "u8.bytes": torch.tensor([0, 127, 255], dtype=torch.uint8),
        "bool.mask": torch.tensor([True, False, True, True], dtype=torch.bool),
        "f32.scalar": torch.tensor(3.5),
        "f32.empty": torch.zeros(0, 4),
    }
    path = os.path.join(HERE, "python_written.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    expected = {"metadata": {"format": "pt"}, "tensors": {}}
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            t = f.get_tensor(k)
            vals = t.flatten()
            vals = [float(x) for x in vals.float()] if t.is_floating_point() else [int(x) for x in vals.to(torch.int64)]
            expected["tensors"][k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vals}
    with open(path + ".expected.json", "w") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)


def conversion():
    rng = np.random.default_rng(0)
    # Every 16-bit pattern, both as bf16 and as f16.
    all16 = np.arange(65536, dtype=np.uint16)
    bf16_to_f32 = torch.from_numpy(all16.view(np.int16).copy()).view(torch.bfloat16).float().numpy().view(np.uint32)
    f16_to_f32 = all16.view(np.float16).astype(np.float32).view(np.uint32)

    edges = []
    for base in [0x00000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000,
                 0x33800000, 0x387FC000, 0x38800000, 0x477FE000, 0x477FF000, 0x477FEFFF, 0x47800000,
                 0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x7F7F8000, 0x7F7F7FFF, 0x00008000, 0x00018000,
                 0x3F801000, 0x3F803000, 0x3F802FFF, 0x33000000, 0x33000001, 0x32FFFFFF, 0x337FE000, 0x38000000]:
        for sign in (0, 0x80000000):
            for delta in (-2, -1, 0, 1, 2):
                v = (base + delta) & 0xFFFFFFFF
                edges.append(v | sign)
    # Ties for bf16: low 16 bits exactly 0x8000, with even and odd kept parts.
    ties = (rng.integers(0, 2**15, 4000, dtype=np.uint32) << 16) | 0x8000
    # Ties for f16 in the normal range: low 13 bits 0x1000 with exponents 113..142.
    exps = rng.integers(113, 143, 4000, dtype=np.uint32)
    f16ties = (exps << 23) | (rng.integers(0, 2**10, 4000, dtype=np.uint32) << 13) | 0x1000
    # f16 subnormal range ties and neighbours: exponents 102..112.
    sexps = rng.integers(102, 113, 4000, dtype=np.uint32)
    f16sub = (sexps << 23) | rng.integers(0, 2**23, 4000, dtype=np.uint32)
    randbits = rng.integers(0, 2**32, 60000, dtype=np.uint64).astype(np.uint32)
    normals = rng.standard_normal(20000).astype(np.float32).view(np.uint32)
    f32 = np.concatenate([np.array(edges, dtype=np.uint32), ties, ties | 0x80000000, f16ties, f16sub, randbits, normals])
    f32 = f32.astype(np.uint32)
    as_float = f32.view(np.float32)
    not_nan = ~np.isnan(as_float)
    f32 = f32[not_nan]  # NaN results are checked for NaN-ness in the test, not bit for bit
    as_float = f32.view(np.float32)
    with np.errstate(over="ignore"):
        to_f16 = as_float.astype(np.float16).view(np.uint16)
    to_bf16 = torch.from_numpy(as_float.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)

    from safetensors.numpy import save_file as np_save
    np_save({
        "all16": all16,
        "bf16_to_f32": bf16_to_f32,
        "f16_to_f32": f16_to_f32,
        "f32": f32,
        "f32_to_bf16": to_bf16,
        "f32_to_f16": to_f16,
    }, os.path.join(HERE, "conversion.safetensors"), metadata={
        "torch": torch.__version__, "numpy": np.__version__,
        "note": "bf16 results from torch .to(bfloat16), f16 from numpy astype(float16); NaN inputs excluded from f32",
    })


if __name__ == "__main__":
    folders = make_models()
    expected_weights(folders)
    python_written()
    conversion()
    print("fixtures written")
