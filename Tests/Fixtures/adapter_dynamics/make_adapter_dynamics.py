#!/usr/bin/env python3
"""Reference values for the adapter-dynamics tests (Docs/AdapterDynamics.md).

Run: python3 Tests/Fixtures/adapter_dynamics/make_adapter_dynamics.py
Needs torch, transformers, peft, safetensors. CPU; the reference arithmetic is float64.

Three PEFT adapters for ../qwen2-small (2 layers; q/o [64, 64], k/v [32, 64], gate/up [128, 64],
down [64, 128]), all seven projections of both layers, saved with PEFT's save_pretrained as a
training run would leave them (float32 tensors, PEFT key names):
  ckpt0   r 4, lora_alpha 8             (scale alpha / r = 2)
  ckpt1   r 4, lora_alpha 8             ckpt0's factors plus a perturbation
  ckpt2   r 8, lora_alpha 16, use_rslora (scale alpha / sqrt(r)): its first 4 components continue
          ckpt1's update, 4 more are new; the rank differs from the earlier checkpoints on purpose
The reference forms every update dW = scaling * B @ A explicitly in float64 from the float32
tensors as saved (scaling read from PEFT's own LoRA layer, so rsLoRA is PEFT's), then:
  norm             torch.linalg.norm(dW)                       (Frobenius)
  sigma_max        torch.linalg.svdvals(dW)[0]
  stable_rank      norm^2 / sigma_max^2
  cosine           <dW_t, dW_{t-1}>_F / (|dW_t| |dW_{t-1}|)   (t >= 1)
  increment_norm   |dW_t - dW_{t-1}|                           (t >= 1)
  increment_cosine cos(dW_t - dW_{t-1}, dW_{t-1} - dW_{t-2})   (t >= 2)
  sigma_growth     sigma_max_t / sigma_max_{t-1}               (t >= 1)
and the whole-adapter aggregates: norm = sqrt(sum of module norm^2), sigma_max = max over modules,
cosine and increment_cosine of all modules' updates concatenated into one vector, mean_cosine
= mean of the module cosines, increment_norm of the concatenated increments, sigma_growth of the
whole-adapter sigma_max. Writes expected.json beside the adapter folders.
"""
import json
import os

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
torch.set_grad_enabled(False)


def path_of(layer, module):
    part = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"base_model.model.model.layers.{layer}.{part}.{module}"


def make_adapters():
    """Saves ckpt0..2 with PEFT and returns their PEFT scalings."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    g = torch.Generator().manual_seed(2112)
    specs = [dict(r=4, lora_alpha=8, use_rslora=False), dict(r=4, lora_alpha=8, use_rslora=False),
             dict(r=8, lora_alpha=16, use_rslora=True)]
    previous = {}
    scalings = []
    for t, spec in enumerate(specs):
        base = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "qwen2-small")).float().eval()
        pm = get_peft_model(base, LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                                             target_modules=MODULES, **spec))
        scaling = None
        for name, mod in pm.named_modules():
            if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
                a = mod.lora_A["default"].weight   # [r, in]
                b = mod.lora_B["default"].weight   # [out, r]
                r, d_in = a.shape
                d_out = b.shape[0]
                s = mod.scaling["default"]
                scaling = s if scaling is None else scaling
                assert scaling == s
                if t == 0:
                    new_a = (torch.rand(r, d_in, generator=g, dtype=torch.float64) * 2 - 1) / d_in ** 0.5
                    new_b = torch.randn(d_out, r, generator=g, dtype=torch.float64) * 0.05
                else:
                    pa, pb, ps = previous[name]
                    k = pa.shape[0]
                    new_a = torch.empty(r, d_in, dtype=torch.float64)
                    new_b = torch.empty(d_out, r, dtype=torch.float64)
                    # Continue the previous update (rescaled to this scaling), perturbed.
                    new_a[:k] = pa + 0.3 * (torch.rand(k, d_in, generator=g, dtype=torch.float64) * 2 - 1) / d_in ** 0.5
                    new_b[:, :k] = (pb + torch.randn(d_out, k, generator=g, dtype=torch.float64) * 0.03) * (ps / s)
                    if r > k:
                        new_a[k:] = (torch.rand(r - k, d_in, generator=g, dtype=torch.float64) * 2 - 1) / d_in ** 0.5
                        new_b[:, k:] = torch.randn(d_out, r - k, generator=g, dtype=torch.float64) * 0.01
                a.copy_(new_a.float())
                b.copy_(new_b.float())
                previous[name] = (a.double().clone(), b.double().clone(), s)
        out = os.path.join(HERE, f"ckpt{t}")
        pm.save_pretrained(out)
        os.remove(os.path.join(out, "README.md"))  # generated model card, not needed
        cfg_path = os.path.join(out, "adapter_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["base_model_name_or_path"] = "qwen2-small"  # not this machine's absolute path
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        scalings.append(float(scaling))
    return scalings


def updates(t, scaling):
    """dW per (layer, module) from the saved tensors, float64."""
    tensors = load_file(os.path.join(HERE, f"ckpt{t}", "adapter_model.safetensors"))
    out = {}
    for layer in range(2):
        for m in MODULES:
            p = path_of(layer, m)
            a = tensors[f"{p}.lora_A.weight"]
            b = tensors[f"{p}.lora_B.weight"]
            assert a.dtype == torch.float32 and b.dtype == torch.float32
            out[f"{layer}.{m}"] = scaling * (b.double() @ a.double())
    return out, tensors


def cos(x, y):
    return float((x * y).sum() / (torch.linalg.norm(x) * torch.linalg.norm(y)))


def main():
    scalings = make_adapters()
    dws = [updates(t, s)[0] for t, s in enumerate(scalings)]
    keys = list(dws[0].keys())
    checkpoints = []
    for t, dw in enumerate(dws):
        modules = {}
        for k in keys:
            w = dw[k]
            sv = torch.linalg.svdvals(w)
            n = float(torch.linalg.norm(w))
            e = dict(norm=n, sigma_max=float(sv[0]), stable_rank=n * n / float(sv[0]) ** 2)
            if t >= 1:
                prev = dws[t - 1][k]
                e["cosine"] = cos(w, prev)
                e["increment_norm"] = float(torch.linalg.norm(w - prev))
                e["sigma_growth"] = float(sv[0]) / float(torch.linalg.svdvals(prev)[0])
            if t >= 2:
                e["increment_cosine"] = cos(w - dws[t - 1][k], dws[t - 1][k] - dws[t - 2][k])
            modules[k] = e
        flat = torch.cat([dw[k].flatten() for k in keys])
        agg = dict(norm=float(torch.linalg.norm(flat)), sigma_max=max(v["sigma_max"] for v in modules.values()))
        if t >= 1:
            prev = torch.cat([dws[t - 1][k].flatten() for k in keys])
            agg["cosine"] = cos(flat, prev)
            agg["mean_cosine"] = sum(v["cosine"] for v in modules.values()) / len(modules)
            agg["increment_norm"] = float(torch.linalg.norm(flat - prev))
            prev_sigma = max(float(torch.linalg.svdvals(dws[t - 1][k])[0]) for k in keys)
            agg["sigma_growth"] = agg["sigma_max"] / prev_sigma
        if t >= 2:
            prev2 = torch.cat([dws[t - 2][k].flatten() for k in keys])
            agg["increment_cosine"] = cos(flat - prev, prev - prev2)
        checkpoints.append(dict(folder=f"ckpt{t}", scaling=scalings[t], aggregate=agg, modules=modules))
    import peft
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"torch": torch.__version__, "peft": peft.__version__, "note": "see make_adapter_dynamics.py",
                   "checkpoints": checkpoints}, f, indent=1)
    print("adapter dynamics reference written")


if __name__ == "__main__":
    main()
