#!/usr/bin/env python3
"""Reference outputs of PyTorch/transformers/PEFT for the forward-pass tests.

Run: python3 Tests/Fixtures/model/make_reference.py   (after safetensors/make_fixtures.py)
Needs torch, transformers, peft, safetensors. Float32, eager attention, CPU.

Models (made by ../safetensors/make_fixtures.py):
  ../qwen2-small               f32, tied head, vocab 512, rope_theta 25000
  ../qwen2-small-bf16-sharded  bf16 weights, untied head, 7 shards

Writes model/reference.safetensors (float32 unless noted) and model/reference.json:
  prompt{i}.ids               [T_i] int64   token ids of prompt i (random, seeded), lengths 7, 13, 3
  prompt{i}.embed             [T_i, H]      embedding output                      (qwen2-small)
  prompt{i}.layer{l}          [T_i, H]      residual stream after decoder layer l (qwen2-small)
  prompt{i}.final_norm        [T_i, H]      after model.norm                      (qwen2-small)
  prompt{i}.logits            [T_i, V]      all positions                          (qwen2-small)
  bf16.prompt{0,1}.logits     [T_i, V]      qwen2-small-bf16-sharded run in float32 after loading bf16
  bf16native.prompt{0,1}.logits [T_i, V]    the same model run in bfloat16 throughout (logits widened)
  bf16.ids45, bf16.ids45.logits, bf16native.ids45.logits   the same for a 45-token prompt
  lora.prompt1.logits         [T_1, V]      qwen2-small + adapters/lora-r4 (r 4, alpha 8, all 7 modules)
  rslora.prompt1.logits       [T_1, V]      qwen2-small + adapters/rslora-r8 (r 8, alpha 16, rsLoRA,
                                            q_proj and down_proj of layer 1 only)
  long.ids                    [600] int64   a sequence longer than 512 tokens
  long.logits_at              [K] int64     positions whose logits are stored
  long.logits                 [K, V]        logits at those positions (max_position_embeddings 2048)
  greedy.ids                  [20] int64    greedy continuation of prompt1 by model.generate
Adapters are saved with PEFT's save_pretrained under model/adapters/, lora_B drawn from
N(0, 0.1) so that they change the output.
"""
import json
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
torch.set_grad_enabled(False)


def load(name, **kw):
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, name), attn_implementation="eager", **kw)
    return m.float().eval()


def hidden_states(model, ids):
    out = model(torch.tensor([ids]), output_hidden_states=True)
    # hidden_states: embed, after layer 0 .. after layer L-2, and final-norm output last.
    hs = out.hidden_states
    return out.logits[0], hs


def main():
    from peft import LoraConfig, get_peft_model

    g = torch.Generator().manual_seed(123)
    prompts = [torch.randint(0, 512, (n,), generator=g).tolist() for n in (7, 13, 3)]
    t = {}
    model = load("qwen2-small")
    L = model.config.num_hidden_layers
    for i, ids in enumerate(prompts):
        t[f"prompt{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        # Hooks give the residual stream after every layer, including the last (hidden_states'
        # last entry is after the final norm).
        layers = []
        hooks = [layer.register_forward_hook(lambda m, a, o: layers.append((o[0] if isinstance(o, tuple) else o)[0].clone()))
                 for layer in model.model.layers]
        out = model(torch.tensor([ids]), output_hidden_states=True)
        for h in hooks:
            h.remove()
        t[f"prompt{i}.embed"] = out.hidden_states[0][0]
        for l in range(L):
            t[f"prompt{i}.layer{l}"] = layers[l]
        t[f"prompt{i}.final_norm"] = out.hidden_states[-1][0]
        t[f"prompt{i}.logits"] = out.logits[0]

    gen = model.generate(torch.tensor([prompts[1]]), max_new_tokens=20, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    t["greedy.ids"] = gen[0, len(prompts[1]):].to(torch.int64)

    bf = load("qwen2-small-bf16-sharded", dtype=torch.bfloat16)
    t["bf16.prompt0.logits"] = bf(torch.tensor([prompts[0]])).logits[0]
    t["bf16.prompt1.logits"] = bf(torch.tensor([prompts[1]])).logits[0]
    # The same model run natively in bfloat16 (every activation rounded to bf16): the yardstick
    # of the opt-in bf16 compute precision, which must land at least as close to the float32
    # logits above as PyTorch's own bf16 run does.
    from transformers import AutoModelForCausalLM
    native = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "qwen2-small-bf16-sharded"), dtype=torch.bfloat16,
                                                  attn_implementation="eager").eval()
    for i in (0, 1):
        t[f"bf16native.prompt{i}.logits"] = native(torch.tensor([prompts[i]])).logits[0].float()
    # 45 tokens: more rows than the direct kernels take, so the bf16 dot-product kernel runs.
    ids45 = torch.randint(0, 512, (45,), generator=torch.Generator().manual_seed(45))
    t["bf16.ids45"] = ids45.to(torch.int64)
    t["bf16.ids45.logits"] = bf(ids45[None]).logits[0]
    t["bf16native.ids45.logits"] = native(ids45[None]).logits[0].float()

    # LoRA adapters.
    os.makedirs(os.path.join(HERE, "adapters"), exist_ok=True)
    specs = {
        "lora-r4": dict(r=4, lora_alpha=8, use_rslora=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
        "rslora-r8": dict(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "down_proj"],
                          layers_to_transform=[1]),
    }
    for name, spec in specs.items():
        torch.manual_seed(0)
        base = load("qwen2-small")
        pm = get_peft_model(base, LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **spec))
        gb = torch.Generator().manual_seed(1)
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gb) * 0.1)
        out = os.path.join(HERE, "adapters", name)
        pm.save_pretrained(out)
        os.remove(os.path.join(out, "README.md"))  # generated model card, not needed
        key = "lora" if name == "lora-r4" else "rslora"
        t[f"{key}.prompt1.logits"] = pm(torch.tensor([prompts[1]])).logits[0]

    # A sequence past 512 positions, with the context raised to 2048.
    long_model = load("qwen2-small", max_position_embeddings=2048)
    ids = torch.randint(0, 512, (600,), generator=g)
    logits = long_model(ids[None]).logits[0]
    at = torch.tensor([0, 1, 255, 511, 512, 513, 598, 599])
    t["long.ids"] = ids.to(torch.int64)
    t["long.logits_at"] = at
    t["long.logits"] = logits[at]

    t = {k: v.contiguous() for k, v in t.items()}
    save_file(t, os.path.join(HERE, "reference.safetensors"), metadata={
        "torch": torch.__version__, "note": "see make_reference.py"})
    import transformers, peft
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                   "prompts": prompts, "greedy": t["greedy.ids"].tolist()}, f, indent=1)
    print("reference written")


if __name__ == "__main__":
    main()
