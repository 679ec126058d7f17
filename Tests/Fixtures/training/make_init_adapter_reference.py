#!/usr/bin/env python3
"""PyTorch + PEFT reference for training from an existing adapter (`misalign train --init-adapter`).

Run: python3 Tests/Fixtures/training/make_init_adapter_reference.py   (needs torch, transformers, peft)
Model: ../qwen2-small (f32, vocab 512), eager attention, float32, CPU.

Builds a fixed PEFT adapter that is NOT misalign's default (r 4, lora_alpha 8, use_rslora false:
scale 2, where the defaults r 32, alpha 64, rsLoRA give 11.3), with B drawn N(0, 0.1) so the
scale matters from the first step, and saves it with PEFT's save_pretrained into init-adapter-r4/.
Then trains it 3 AdamW steps as misalign's trainer does with default settings except lr, warmup
and epochs: AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01), linear schedule with 0 warmup
steps, clipping at 1.0, every step covering all 5 sequences (batch 2 x accumulation 8 with 5
examples: one step per epoch, 3 epochs); the loss of a step is the sum of token cross-entropies
over the step's targets divided by their count (transformers 5's num_items_in_batch).

Writes:
  init-adapter-r4/                        the adapter (adapter_config.json, adapter_model.safetensors)
  init_adapter_reference.json             settings, the sequences (ids, mask), loss / lr / grad_norm per step
  init_adapter_reference.safetensors      final.<peft tensor name>: the weights after the 3 steps
"""
import json
import math
import os

import torch
from safetensors.torch import save_file

from make_training_reference import micro_batch  # padding and HF-style labels, as for the other fixture

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LR, WD, MAX_NORM, STEPS = 1e-2, 0.01, 1.0, 3


def main():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup
    import peft, transformers

    base = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "qwen2-small"), attn_implementation="eager").float()
    torch.manual_seed(4)
    spec = dict(r=4, lora_alpha=8, use_rslora=False, lora_dropout=0.0, target_modules=ALL)
    pm = get_peft_model(base, LoraConfig(bias="none", task_type="CAUSAL_LM", **spec))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    pm.peft_config["default"].base_model_name_or_path = "qwen2-small"
    pm.save_pretrained(os.path.join(HERE, "init-adapter-r4"))
    os.remove(os.path.join(HERE, "init-adapter-r4", "README.md"))  # PEFT's model card template

    # Five sequences, each with a trained span at its end (as an assistant reply).
    seqs = []
    for T in [9, 14, 6, 11, 12]:
        ids = torch.randint(0, 512, (T,), generator=g)
        start = int(torch.randint(1, T - 1, (1,), generator=g))
        mask = (torch.arange(T) >= start).to(torch.int64)
        seqs.append((ids, mask))
    ids, att, lab = micro_batch(seqs)
    n_items = int(lab[..., 1:].ne(-100).sum())

    params = {n.replace(".default", ""): p for n, p in pm.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(list(params.values()), lr=LR, weight_decay=WD)
    sched = get_linear_schedule_with_warmup(opt, 0, STEPS)
    losses, lrs, norms = [], [], []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        out = pm(input_ids=ids, attention_mask=att, labels=lab, num_items_in_batch=torch.tensor(n_items))
        out.loss.backward()
        losses.append(out.loss.item())
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)))
        opt.step()
        sched.step()
        opt.zero_grad()

    meta = {
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "adapter": "init-adapter-r4", "lora": spec,
        "settings": {"lr": LR, "warmup_steps": 0, "schedule": "linear", "weight_decay": WD, "max_grad_norm": MAX_NORM,
                     "epochs": STEPS, "batch_size": 2, "grad_accum": 8},
        "sequences": [{"ids": s.tolist(), "mask": m.tolist()} for s, m in seqs],
        "items": n_items, "loss": losses, "lr": lrs, "grad_norm": norms,
    }
    save_file({f"final.{n}": p.detach().clone().contiguous() for n, p in params.items()},
              os.path.join(HERE, "init_adapter_reference.safetensors"), metadata={"note": "see make_init_adapter_reference.py"})
    with open(os.path.join(HERE, "init_adapter_reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    for f in ["init-adapter-r4/adapter_model.safetensors", "init_adapter_reference.safetensors"]:
        os.chmod(os.path.join(HERE, f), 0o644)
    print("init-adapter reference written: losses", losses, "grad norms", norms)


if __name__ == "__main__":
    main()
