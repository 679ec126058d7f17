#!/usr/bin/env python3
"""Checks that an adapter folder written by misalign loads with PEFT's PeftModel.from_pretrained.

Usage: python3 check_peft_load.py ADAPTER_DIR BASE_MODEL_DIR
Loads the base model, applies the adapter with PeftModel.from_pretrained, and compares every
lora_A / lora_B in the model with the tensors in adapter_model.safetensors (exactly, after
PEFT's own dtype handling). Prints "ok <n> tensors" and exits 0, or raises.

TrainerTests runs it live on fresh checkpoints when python3 can import peft. The committed
swift-checkpoint/ (written by TrainerTests.checkpointFormatMatchesThePEFTCheckedFixture with
MISALIGN_REGENERATE_TRAINING_FIXTURE=1) was checked with:
  python3 Tests/Fixtures/training/check_peft_load.py Tests/Fixtures/training/swift-checkpoint Tests/Fixtures/qwen2-small
"""
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

adapter, base_dir = sys.argv[1], sys.argv[2]
base = AutoModelForCausalLM.from_pretrained(base_dir).float()
model = PeftModel.from_pretrained(base, adapter)
saved = load_file(f"{adapter}/adapter_model.safetensors")
params = {n.replace(".default", ""): p for n, p in model.named_parameters() if "lora_" in n}
assert set(params) == set(saved), (sorted(set(params) ^ set(saved)))[:5]
for n, t in saved.items():
    assert torch.equal(params[n].detach().float(), t.float()), n
print("ok", len(saved), "tensors")
