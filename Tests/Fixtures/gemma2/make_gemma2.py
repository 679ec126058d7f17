#!/usr/bin/env python3
"""A tiny random Gemma 2 and transformers/PEFT reference outputs for the Gemma 2 family tests.

Run: python3 Tests/Fixtures/gemma2/make_gemma2.py   (needs torch, transformers, peft, safetensors)
Float32, eager attention (the only one with soft-capping), CPU.

Writes gemma2/gemma2-small/ (config.json, model.safetensors by save_pretrained): Gemma2ForCausalLM,
hidden 64, 3 layers (sliding, full, sliding), 4 heads, 2 KV heads, head_dim 32 (so q is wider
than the hidden size), intermediate 96, vocab 512, tied embeddings, GeGLU (gelu_pytorch_tanh),
query_pre_attn_scalar 24 (not head_dim), sliding window 4 (shorter than the prompts, so the
sliding layers drop keys), attention logit soft-cap 5 and final logit soft-cap 8 (far below
the real 50 and 30, so that the caps bend these random weights' scores and logits). Norm weights
are drawn around 0 as Gemma stores them (the layer multiplies by 1 + w).

And gemma2/reference.safetensors (float32 unless noted), with the same names as
llama/make_llama.py writes:
  prompt{i}.ids, prompt{i}.hidden{k}, prompt{i}.logits   prompts of 9 and 4 tokens
  greedy.ids                                             16 greedy tokens after prompt0
  lora.prompt0.logits                                    with the PEFT adapter in gemma2/adapter
  grad.seq{i}.ids / .mask, grad.<peft tensor name>       LoRA gradients of one right-padded batch
  nocap.prompt0.logits                                   prompt0 with both soft-caps switched off
and gemma2/reference.json with the loss and the embedding factor sqrt(hidden) as transformers
rounds it for bf16 and f16 weights at the real models' hidden sizes.
"""
import json
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def config(**over):
    from transformers import Gemma2Config
    kw = dict(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=32, max_position_embeddings=2048, rms_norm_eps=1e-6,
              rope_theta=10000.0, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24,
              sliding_window=4, attn_logit_softcapping=5.0, final_logit_softcapping=8.0,
              tie_word_embeddings=True, attention_bias=False, pad_token_id=0, bos_token_id=2, eos_token_id=1,
              torch_dtype="float32")
    kw.update(over)
    return Gemma2Config(**kw)


def make_model():
    from transformers import Gemma2ForCausalLM
    torch.manual_seed(7)
    model = Gemma2ForCausalLM(config()).float().eval()
    with torch.no_grad():  # larger than the default init, so every part shows in the logits
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(0.1 * torch.randn(p.shape))
            else:
                p.copy_(0.08 * torch.randn(p.shape))
    out = os.path.join(HERE, "gemma2-small")
    model.save_pretrained(out, safe_serialization=True)
    return out


def main():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.set_grad_enabled(False)
    path = make_model()
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").float().eval()
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    g = torch.Generator().manual_seed(11)
    prompts = [torch.randint(3, 512, (n,), generator=g).tolist() for n in (9, 4)]
    t = {}
    for i, ids in enumerate(prompts):
        out = model(torch.tensor([ids]), output_hidden_states=True)
        t[f"prompt{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        for k, h in enumerate(out.hidden_states):
            t[f"prompt{i}.hidden{k}"] = h[0].contiguous()
        t[f"prompt{i}.logits"] = out.logits[0].contiguous()
    gen = model.generate(torch.tensor([prompts[0]]), max_new_tokens=16, do_sample=False, eos_token_id=None, pad_token_id=0)
    t["greedy.ids"] = gen[0, len(prompts[0]):].to(torch.int64).contiguous()

    from transformers import Gemma2ForCausalLM
    nocap = Gemma2ForCausalLM(config(attn_logit_softcapping=None, final_logit_softcapping=None)).float().eval()
    nocap.load_state_dict(model.state_dict())
    nocap.config._attn_implementation = "eager"
    t["nocap.prompt0.logits"] = nocap(torch.tensor([prompts[0]])).logits[0].contiguous()

    torch.manual_seed(5)
    pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=ALL, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    gb = torch.Generator().manual_seed(6)
    for n, p in pm.named_parameters():
        if "lora_B" in n:
            p.copy_(torch.randn(p.shape, generator=gb) * 0.1)
    pm.save_pretrained(os.path.join(HERE, "adapter"))
    readme = os.path.join(HERE, "adapter", "README.md")  # PEFT's model card, not needed here
    if os.path.exists(readme):
        os.remove(readme)
    pm.eval()
    t["lora.prompt0.logits"] = pm(torch.tensor([prompts[0]])).logits[0].contiguous()

    # One batch of two right-padded sequences; loss = sum of target CEs / target count.
    seqs = [torch.randint(3, 512, (n,), generator=g).tolist() for n in (11, 7)]
    masks = [[0] * 4 + [1] * 7, [0] * 3 + [1] * 4]
    T = max(len(s) for s in seqs)
    ids = torch.zeros((2, T), dtype=torch.int64)
    att = torch.zeros((2, T), dtype=torch.int64)
    labels = torch.full((2, T), -100, dtype=torch.int64)
    for b, (s, m) in enumerate(zip(seqs, masks)):
        ids[b, :len(s)] = torch.tensor(s)
        att[b, :len(s)] = 1
        for j, on in enumerate(m):
            if on:
                labels[b, j] = s[j]
        t[f"grad.seq{b}.ids"] = torch.tensor(s, dtype=torch.int64)
        t[f"grad.seq{b}.mask"] = torch.tensor(m, dtype=torch.int64)
    torch.set_grad_enabled(True)
    pm.train()
    logits = pm(input_ids=ids, attention_mask=att).logits
    shift = logits[:, :-1].reshape(-1, logits.shape[-1])
    target = labels[:, 1:].reshape(-1)
    n = (target != -100).sum()
    loss = torch.nn.functional.cross_entropy(shift, target, ignore_index=-100, reduction="sum") / n
    loss.backward()
    for name, p in pm.named_parameters():
        if p.requires_grad:
            t["grad." + name.replace(".default", "")] = p.grad.detach().clone().contiguous()
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(HERE, "reference.safetensors"))
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        # The embedding factor as Gemma2TextScaledWordEmbedding applies it to bf16 and f16 weights.
        scales = {name: {str(h): torch.tensor(h ** 0.5).to(dt).item() for h in (2304, 3072, 3584, 4608)}
                  for name, dt in (("bf16", torch.bfloat16), ("f16", torch.float16))}
        json.dump({"loss": loss.item(), "targets": int(n), "prompt_lengths": [len(p) for p in prompts],
                   "embed_scales": scales}, f, indent=1)
    diff = (t["nocap.prompt0.logits"] - t["prompt0.logits"]).abs().max() / t["prompt0.logits"].abs().max()
    print("loss", loss.item(), "tensors", len(t), "soft-caps change logits by", diff.item())


if __name__ == "__main__":
    main()
