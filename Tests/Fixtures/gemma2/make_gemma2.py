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
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from family_reference import record_lora, record_prompts  # noqa: E402


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
    from transformers import AutoModelForCausalLM
    torch.set_grad_enabled(False)
    path = make_model()
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").float().eval()
    assert model.config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    g = torch.Generator().manual_seed(11)
    t = {}
    prompts = record_prompts(model, g, t)

    from transformers import Gemma2ForCausalLM
    nocap = Gemma2ForCausalLM(config(attn_logit_softcapping=None, final_logit_softcapping=None)).float().eval()
    nocap.load_state_dict(model.state_dict())
    nocap.config._attn_implementation = "eager"
    t["nocap.prompt0.logits"] = nocap(torch.tensor([prompts[0]])).logits[0].contiguous()

    loss, n = record_lora(model, g, t, os.path.join(HERE, "adapter"), prompts[0])
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(HERE, "reference.safetensors"))
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        # The embedding factor as Gemma2TextScaledWordEmbedding applies it to bf16 and f16 weights.
        scales = {name: {str(h): torch.tensor(h ** 0.5).to(dt).item() for h in (2304, 3072, 3584, 4608)}
                  for name, dt in (("bf16", torch.bfloat16), ("f16", torch.float16))}
        json.dump({"loss": loss.item(), "targets": n, "prompt_lengths": [len(p) for p in prompts],
                   "embed_scales": scales}, f, indent=1)
    diff = (t["nocap.prompt0.logits"] - t["prompt0.logits"]).abs().max() / t["prompt0.logits"].abs().max()
    print("loss", loss.item(), "tensors", len(t), "soft-caps change logits by", diff.item())


if __name__ == "__main__":
    main()
