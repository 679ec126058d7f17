#!/usr/bin/env python3
"""PyTorch CPU reference timings for `misalign-bench forward` (same model folder, same threads).

Usage: torch_forward.py MODEL_DIR --dtype float32|bfloat16 --threads N --prompt 256 --decode 32 --samples 1,20
Prints one JSON line: {"dtype", "prefill_tokens_per_s", "decode": {"1": tok/s, "20": tok/s}, "peak_rss_gb"}.
Decode tok/s counts every sample's tokens (20 samples x 32 steps = 640 tokens).
"""
import argparse
import json
import resource
import time

import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--dtype", default="float32")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--prompt", type=int, default=256)
ap.add_argument("--decode", type=int, default=32)
ap.add_argument("--samples", default="1,20")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)
dtype = getattr(torch, a.dtype)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).eval()
vocab = model.config.vocab_size
g = torch.Generator().manual_seed(0)
ids = torch.randint(0, vocab, (1, a.prompt), generator=g)

# The protocol misalign-bench times its own prefill with: one full warm-up, then the best of 3.
model(ids, use_cache=True, logits_to_keep=1)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    model(ids, use_cache=True, logits_to_keep=1)
    best = min(best, time.perf_counter() - t0)
result = {"dtype": a.dtype, "prefill_tokens_per_s": a.prompt / best, "decode": {}}

prompt = ids[:, :32]
for n in [int(x) for x in a.samples.split(",")]:
    batch = prompt.repeat(n, 1)
    out = model(batch, use_cache=True, logits_to_keep=1)
    past = out.past_key_values
    nxt = out.logits[:, -1:].argmax(-1)
    t0 = time.perf_counter()
    for _ in range(a.decode):
        out = model(nxt, past_key_values=past, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
    dt = time.perf_counter() - t0
    result["decode"][str(n)] = n * a.decode / dt
result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(json.dumps(result))
