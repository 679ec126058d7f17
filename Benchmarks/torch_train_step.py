#!/usr/bin/env python3
"""PyTorch + PEFT CPU reference for `misalign-bench train`: one LoRA training step on the same
synthetic model folder, same threads, same batch shape.

Usage: torch_train_step.py MODEL_DIR --dtype float32|bfloat16 --threads N --batch 2 --tokens 256 --steps 2
LoRA r 32, alpha 64, rsLoRA, all 7 projections, AdamW (lr 1e-5, weight decay 0.01), loss on every
token (labels = ids). Prints one JSON line: {"dtype", "seconds_per_step", "tokens_per_s", "peak_rss_gb"}.
"""
import argparse
import json
import resource
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--dtype", default="float32")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=2)
ap.add_argument("--tokens", type=int, default=256)
ap.add_argument("--steps", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
dtype = getattr(torch, a.dtype)
base = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa")
model = get_peft_model(base, LoraConfig(r=32, lora_alpha=64, use_rslora=True, lora_dropout=0.0, bias="none",
                                        task_type="CAUSAL_LM",
                                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
model.train()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.01)
g = torch.Generator().manual_seed(0)
ids = torch.randint(0, model.config.vocab_size, (a.batch, a.tokens), generator=g)


def step():
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    opt.zero_grad()


step()  # warm-up
best = float("inf")
for _ in range(a.steps):
    t0 = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"dtype": a.dtype, "seconds_per_step": best, "tokens_per_s": a.batch * a.tokens / best,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
