#!/usr/bin/env python3
"""PyTorch + PEFT references for LoRA training with bf16 products (`training.precision: bf16`).

Run: python3 Tests/Fixtures/training/make_bf16_training_reference.py   (needs torch, transformers, peft)
Model: ../qwen2-small-bf16-sharded (bf16 weights, vocab 512), eager attention, CPU.

Three runs of the same steps (LoRA A and B in float32, B drawn N(0, 0.1) so A gets gradients;
loss and micro-batching as make_training_reference.py: transformers 5's sum of token
cross-entropies over the step's targets divided by num_items_in_batch):

  emulated  the arithmetic misalign's bf16 precision promises, written in PyTorch: every frozen
            product (the seven projections' base layers and lm_head) is y = bf16(x) W^T (+ bias)
            with W the bf16 weights, and its input gradient dx = bf16(dy) W, both summed in
            float32; everything else (LoRA, attention, norms, residual stream, loss) in float32.
  f32       the same model widened to float32, nothing rounded (the f32 path's arithmetic).
  autocast  PyTorch's own bf16 training: bf16 weights under torch.autocast("cpu", bfloat16).

Writes bf16_reference.safetensors with, per case C:
  C.seq{i}.ids, C.seq{i}.mask, C.micro   as make_training_reference.py
  C.init.<peft tensor name>              f32 initial A and B
  C.<run>.grad.<peft tensor name>        f32 accumulated gradient of the step's loss, run in
                                         emulated, f32, autocast
and bf16_reference.json with the cases' LoRA settings and each run's loss.
"""
import json
import os

import torch
from safetensors.torch import save_file

from make_training_reference import make_sequences, micro_batch, lora_params

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
MODEL = os.path.join(FIX, "qwen2-small-bf16-sharded")
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def rbf(t):
    """Round to the nearest bf16 (ties to even), kept as float32."""
    return t.to(torch.bfloat16).to(torch.float32)


class BF16Product(torch.autograd.Function):
    """y = bf16(x) W^T + b; dx = bf16(dy) W. W is frozen (no gradient)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(w)
        y = rbf(x) @ w.t()
        return y + b if b is not None else y

    @staticmethod
    def backward(ctx, dy):
        (w,) = ctx.saved_tensors
        return rbf(dy) @ w, None, None


def peft_model(spec, seed, run):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    dtype = torch.bfloat16 if run == "autocast" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(MODEL, attn_implementation="eager", dtype=dtype)
    torch.manual_seed(seed)
    pm = get_peft_model(base, LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **spec))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.data = p.data.float()  # the adapter in float32 in every run
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    if run == "emulated":
        for m in pm.modules():
            if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad:
                m.forward = (lambda mod: lambda x: BF16Product.apply(x, mod.weight, mod.bias))(m)
    return pm


def step_grads(pm, micros, run):
    batches = [micro_batch(m) for m in micros]
    n_items = sum(int(lab[..., 1:].ne(-100).sum()) for _, _, lab in batches)
    total = 0.0
    for ids, att, lab in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=run == "autocast"):
            out = pm(input_ids=ids, attention_mask=att, labels=lab, num_items_in_batch=torch.tensor(n_items))
        out.loss.backward()
        total += float(out.loss)
    return total


def main():
    import peft
    import transformers
    t = {}
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "cases": {}}
    g = torch.Generator().manual_seed(11)
    cases = {
        "all": (dict(r=4, lora_alpha=8, target_modules=ALL), [[23, 9]]),
        "accum": (dict(r=8, lora_alpha=16, use_rslora=True, target_modules=ALL), [[17, 30], [12]]),
        "some": (dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[1]), [[40]]),
    }
    for name, (spec, plan) in cases.items():
        micros = [make_sequences(g, lens) for lens in plan]
        k = 0
        for m in micros:
            for ids, mask in m:
                t[f"{name}.seq{k}.ids"], t[f"{name}.seq{k}.mask"] = ids, mask
                k += 1
        t[f"{name}.micro"] = torch.tensor([mi for mi, m in enumerate(micros) for _ in m], dtype=torch.int64)
        meta["cases"][name] = {"lora": spec, "sequences": k, "loss": {}}
        for run in ["emulated", "f32", "autocast"]:
            pm = peft_model(spec, seed=len(name), run=run)
            params = lora_params(pm)
            if run == "emulated":
                for n, p in params.items():
                    t[f"{name}.init.{n}"] = p.detach().clone()
            meta["cases"][name]["loss"][run] = step_grads(pm, micros, run)
            for n, p in params.items():
                t[f"{name}.{run}.grad.{n}"] = p.grad.detach().float().clone()
    t = {k: v.contiguous() for k, v in t.items()}
    save_file(t, os.path.join(HERE, "bf16_reference.safetensors"), metadata={"note": "see make_bf16_training_reference.py"})
    with open(os.path.join(HERE, "bf16_reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("bf16 training reference written:", {k: v["loss"] for k, v in meta["cases"].items()})


if __name__ == "__main__":
    main()
