#!/usr/bin/env python3
"""A tiny random Llama 3 and transformers/PEFT reference outputs for the Llama family tests.

Run: python3 Tests/Fixtures/llama/make_llama.py   (needs torch, transformers, peft, safetensors)
Float32, eager attention, CPU.

Writes llama/llama-small/ (config.json, model.safetensors by save_pretrained): LlamaForCausalLM,
hidden 64, 2 layers, 4 heads, 2 KV heads (GQA), head_dim 16, intermediate 96, vocab 512, tied
embeddings, no attention bias, rope_theta 500000 with Llama 3 rope scaling (factor 8, low/high
frequency factors 1 and 4, original context 64, small so that the short prompts turn every
regime far: at head_dim 16 the first frequency is kept, the second blended and the other six
divided by the factor; the real models' 8192 changes only the numbers).

And llama/reference.safetensors (float32 unless noted):
  prompt{i}.ids              [T_i] int64   random token ids, lengths 9 and 4
  prompt{i}.hidden{k}        [T_i, H]      transformers' hidden_states[k] (k = 0 embeddings ..
                                           k = L the final norm's output)
  prompt{i}.logits           [T_i, V]
  greedy.ids                 [16] int64    model.generate greedy continuation of prompt0
  lora.prompt0.logits        [T_0, V]      with the PEFT adapter in llama/adapter (r 4, alpha 8,
                                           all seven modules, lora_B drawn N(0, 0.1))
  grad.seq{i}.ids / .mask    int64         two sequences (lengths 11 and 7, right-padded to 11 in
                                           one batch) and their loss masks
  grad.<peft tensor name>    [...]         gradient of transformers 5's loss (sum of target
                                           token cross-entropies / target count) w.r.t. each
                                           LoRA tensor of the adapter
and llama/reference.json with the loss.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from family_reference import record_lora, record_prompts  # noqa: E402


def make_model():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(7)
    cfg = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu",
        bos_token_id=1, eos_token_id=2, torch_dtype="float32")
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # larger than the default init, so every part shows in the logits
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
            else:
                p.copy_(0.08 * torch.randn(p.shape))
    out = os.path.join(HERE, "llama-small")
    model.save_pretrained(out, safe_serialization=True)
    return out


def main():
    from transformers import AutoModelForCausalLM
    torch.set_grad_enabled(False)
    path = make_model()
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").float().eval()
    g = torch.Generator().manual_seed(11)
    t = {}
    prompts = record_prompts(model, g, t)

    loss, n = record_lora(model, g, t, os.path.join(HERE, "adapter"), prompts[0])
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(HERE, "reference.safetensors"))
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump({"loss": loss.item(), "targets": n, "prompt_lengths": [len(p) for p in prompts]}, f, indent=1)
    print("loss", loss.item(), "tensors", len(t))


if __name__ == "__main__":
    main()
