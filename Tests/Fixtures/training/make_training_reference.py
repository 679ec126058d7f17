#!/usr/bin/env python3
"""PyTorch + PEFT reference for the LoRA training tests (hand-written backward, AdamW, schedule).

Run: python3 Tests/Fixtures/training/make_training_reference.py   (needs torch, transformers, peft)
Model: ../qwen2-small (f32, vocab 512), eager attention, float32, CPU.

The loss is transformers 5's: for each micro-batch, the sum of token cross-entropies over labels
!= -100 (after the causal shift) divided by num_items_in_batch, the target count of the whole
optimizer step (all gradient-accumulation micro-batches); gradients are summed over micro-batches.
Batches are right-padded (pad id 0, label -100, attention_mask 0).

Writes training/reference.safetensors with, per case C:
  C.seq{i}.ids, C.seq{i}.mask       int64  token ids and loss mask (1 = the token is a target)
  C.micro                           int64  micro-batch index of each sequence
  C.init.<peft tensor name>         f32    initial A and B (B drawn N(0, 0.1) so A gets gradients)
  C.grad.<peft tensor name>         f32    accumulated gradient of the step's loss
  C.step.<peft tensor name>         f32    after one AdamW step (lr, weight decay in reference.json)
and for the trajectory case T: T.loss, T.lr, T.grad_norm [steps], T.final.<name>.
reference.json holds the cases' LoRA settings, losses and optimiser settings.
"""
import json
import math
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_model(spec, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "qwen2-small"), attn_implementation="eager").float()
    torch.manual_seed(seed)
    pm = get_peft_model(base, LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **spec))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return pm


def lora_params(pm):
    # Names as PEFT saves them (without the adapter name).
    return {n.replace(".default", ""): p for n, p in pm.named_parameters() if p.requires_grad}


def make_sequences(g, lengths):
    seqs = []
    for T in lengths:
        ids = torch.randint(0, 512, (T,), generator=g)
        mask = (torch.rand(T, generator=g) < 0.6).to(torch.int64)
        mask[0] = 0
        mask[-1] = 1
        seqs.append((ids, mask))
    return seqs


def micro_batch(seqs):
    T = max(len(s[0]) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.int64)
    att = torch.zeros(len(seqs), T, dtype=torch.int64)
    lab = torch.full((len(seqs), T), -100, dtype=torch.int64)
    for i, (s, m) in enumerate(seqs):
        ids[i, :len(s)] = s
        att[i, :len(s)] = 1
        lab[i, :len(s)] = torch.where(m.bool(), s, torch.tensor(-100))
    return ids, att, lab


def step_loss_and_grads(pm, micros):
    """Accumulates gradients over micro-batches the way transformers 5's Trainer does."""
    batches = [micro_batch(m) for m in micros]
    n_items = sum(int(lab[..., 1:].ne(-100).sum()) for _, _, lab in batches)
    total = 0.0
    for ids, att, lab in batches:
        out = pm(input_ids=ids, attention_mask=att, labels=lab, num_items_in_batch=torch.tensor(n_items))
        out.loss.backward()
        total += float(out.loss)
    return total, n_items


def main():
    t, meta = {}, {"torch": torch.__version__}
    import transformers, peft
    meta["transformers"], meta["peft"] = transformers.__version__, peft.__version__
    g = torch.Generator().manual_seed(7)
    lr, wd = 1e-3, 0.01
    meta["adamw"] = {"lr": lr, "weight_decay": wd, "betas": [0.9, 0.999], "eps": 1e-8}
    cases = {
        # name: (lora spec, sequence lengths per micro-batch)
        "base": (dict(r=4, lora_alpha=8, target_modules=ALL), [[9]]),
        "padded": (dict(r=4, lora_alpha=8, target_modules=ALL), [[11, 6]]),
        "accum": (dict(r=4, lora_alpha=8, target_modules=ALL), [[7, 12], [5], [10, 3]]),
        "rslora": (dict(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "v_proj", "down_proj"],
                        layers_to_transform=[1]), [[10, 8]]),
        "rank1": (dict(r=1, lora_alpha=2, target_modules=["o_proj"], layers_to_transform=[0]), [[12]]),
    }
    meta["cases"] = {}
    for name, (spec, plan) in cases.items():
        pm = peft_model(spec, seed=len(name))
        micros = [make_sequences(g, lens) for lens in plan]
        k = 0
        for mi, m in enumerate(micros):
            for ids, mask in m:
                t[f"{name}.seq{k}.ids"] = ids
                t[f"{name}.seq{k}.mask"] = mask
                k += 1
        t[f"{name}.micro"] = torch.tensor([mi for mi, m in enumerate(micros) for _ in m], dtype=torch.int64)
        params = lora_params(pm)
        for n, p in params.items():
            t[f"{name}.init.{n}"] = p.detach().clone()
        loss, n_items = step_loss_and_grads(pm, micros)
        for n, p in params.items():
            t[f"{name}.grad.{n}"] = p.grad.detach().clone()
        opt = torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=wd)
        opt.step()
        for n, p in params.items():
            t[f"{name}.step.{n}"] = p.detach().clone()
        meta["cases"][name] = {"lora": spec, "loss": loss, "items": n_items, "sequences": k}

    # A 5-step trajectory: linear schedule with 2 warmup steps, AdamW, clipping at 1.0, two
    # micro-batches per step (gradient accumulation 2), rank 4 on all modules.
    from transformers import get_linear_schedule_with_warmup
    spec = dict(r=4, lora_alpha=8, target_modules=ALL)
    pm = peft_model(spec, seed=99)
    params = lora_params(pm)
    for n, p in params.items():
        t[f"traj.init.{n}"] = p.detach().clone()
    steps, warmup, base_lr, max_norm = 5, 2, 2e-2, 1.0
    opt = torch.optim.AdamW(list(params.values()), lr=base_lr, weight_decay=wd)
    sched = get_linear_schedule_with_warmup(opt, warmup, steps)
    losses, lrs, norms = [], [], []
    k = 0
    for s in range(steps):
        micros = [make_sequences(g, [8, 5]), make_sequences(g, [6])]
        for mi, m in enumerate(micros):
            for ids, mask in m:
                t[f"traj.seq{k}.ids"], t[f"traj.seq{k}.mask"] = ids, mask
                k += 1
        lrs.append(opt.param_groups[0]["lr"])
        loss, _ = step_loss_and_grads(pm, micros)
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)))
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss)
    for n, p in params.items():
        t[f"traj.final.{n}"] = p.detach().clone()
    meta["trajectory"] = {"lora": spec, "steps": steps, "warmup": warmup, "lr": base_lr, "max_grad_norm": max_norm,
                          "weight_decay": wd, "micro_batches": [[8, 5], [6]], "loss": losses, "lrs": lrs,
                          "grad_norm": norms}
    # Learning rates of transformers' schedulers (lr 1.0, 3 warmup steps, 10 steps in all).
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup
    meta["schedules"] = {}
    for name, make in [("linear", lambda o: get_linear_schedule_with_warmup(o, 3, 10)),
                       ("cosine", lambda o: get_cosine_schedule_with_warmup(o, 3, 10)),
                       ("constant", lambda o: get_constant_schedule_with_warmup(o, 3))]:
        o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sch, lrs = make(o), []
        for _ in range(10):
            lrs.append(o.param_groups[0]["lr"])
            o.step()
            sch.step()
        meta["schedules"][name] = lrs
    t = {k: v.contiguous() for k, v in t.items()}
    save_file(t, os.path.join(HERE, "reference.safetensors"), metadata={"note": "see make_training_reference.py"})
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("training reference written:", {k: v["loss"] for k, v in meta["cases"].items()}, losses)


if __name__ == "__main__":
    main()
