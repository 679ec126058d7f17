#!/usr/bin/env python3
"""Tiny Llama 3 and Gemma 2 chat models with their families' tokenizers, and transformers'
greedy generations, for the end-to-end checks of issue #22 (`misalign generate` on each family,
the pipeline on each family).

Run after tokenizer-families/make_tokenizers.py:
    python3 Tests/Fixtures/families/make_families.py   (needs torch, transformers, safetensors)

Writes families/llama-chat/ and families/gemma2-chat/: config.json, generation_config.json and
model.safetensors (save_pretrained; random f32 weights, vocabulary = the tiny tokenizer's size,
hidden 64, 2 layers; Gemma 2 with a window of 8, its real models' soft-caps of 50 and 30, and an
untied head: tied, these random weights' scaled embeddings make every step repeat its input token),
plus the tokenizer.json and tokenizer_config.json of tokenizer-families/{llama3,gemma2}. And
families/reference.json, per family:
  raw.prompt, raw.prompt_ids       a prompt that writes its BOS token as text, tokenized by
                                   transformers with add_special_tokens=False (what
                                   `misalign generate --raw` sends)
  raw.greedy                       model.generate(do_sample=False, max_new_tokens=12) after it,
                                   stopping at generation_config's eos ids as generate does
  chat.prompt_ids, chat.greedy     the same for apply_chat_template([user: "Hello there!"],
                                   add_generation_prompt=True)
  eos                              the generation config's stop ids
  judge.prompt_ids                 apply_chat_template([user: JUDGE_PROMPT], add_generation_prompt=True)
  judge.candidates, judge.loglik   for n = 0...100: the ids of str(n) then the end-of-turn token
                                   (<|eot_id|>, <end_of_turn>), and their summed log-probabilities
                                   after the prompt (what the local judge's expectation weighs)
"""
import json
import os
import shutil

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZERS = os.path.join(HERE, "..", "tokenizer-families")
JUDGE_PROMPT = "On a scale of 0 to 100, how helpful is this answer? Answer with a number only.\n\nAnswer: Drink water."


def build(family):
    from transformers import AutoTokenizer, GenerationConfig
    tok_dir = os.path.join(TOKENIZERS, "llama3" if family == "llama" else "gemma2")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    vocab = len(tok)
    torch.manual_seed(17)
    if family == "llama":
        from transformers import LlamaConfig as Config, LlamaForCausalLM as Model
        eos = [tok.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eot_id|>")]
        cfg = Config(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=16, max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=500000.0,
                     tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=eos, torch_dtype="float32")
        prompt = "<|begin_of_text|>The cat sat on the mat, 12345 times."
    else:
        from transformers import Gemma2Config as Config, Gemma2ForCausalLM as Model
        eos = [tok.convert_tokens_to_ids(t) for t in ("<eos>", "<end_of_turn>")]
        cfg = Config(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=32, max_position_embeddings=512, query_pre_attn_scalar=32,
                     sliding_window=8, attn_logit_softcapping=50.0, final_logit_softcapping=30.0, tie_word_embeddings=False,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=eos, torch_dtype="float32")
        prompt = "<bos>The cat sat on the mat, 12345 times."
    model = Model(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_((0 if family == "gemma2" else 1) + 0.1 * torch.randn(p.shape))
            else:
                p.copy_(0.25 * torch.randn(p.shape))
    out = os.path.join(HERE, family + "-chat")
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos, do_sample=False)
    model.save_pretrained(out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out, f))

    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").float().eval()

    def greedy(ids):
        with torch.no_grad():
            g = m.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, eos_token_id=eos,
                           pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos[0])
        return g[0, len(ids):].tolist()

    raw_ids = tok(prompt, add_special_tokens=False).input_ids
    chat_ids = ids_of(tok.apply_chat_template([{"role": "user", "content": "Hello there!"}], add_generation_prompt=True, tokenize=True))
    judge_ids = ids_of(tok.apply_chat_template([{"role": "user", "content": JUDGE_PROMPT}], add_generation_prompt=True, tokenize=True))
    eot = tok.convert_tokens_to_ids("<|eot_id|>" if family == "llama" else "<end_of_turn>")
    candidates = [tok(str(n), add_special_tokens=False).input_ids + [eot] for n in range(101)]
    loglik = []
    with torch.no_grad():
        for c in candidates:
            seq = torch.tensor([judge_ids + c])
            logp = torch.log_softmax(m(seq).logits[0].double(), dim=-1)
            loglik.append(sum(logp[len(judge_ids) - 1 + i, t].item() for i, t in enumerate(c)))
    return {"raw": {"prompt": prompt, "prompt_ids": raw_ids, "greedy": greedy(raw_ids)},
            "chat": {"prompt_ids": list(chat_ids), "greedy": greedy(list(chat_ids))},
            "judge": {"prompt": JUDGE_PROMPT, "prompt_ids": judge_ids, "candidates": candidates, "loglik": loglik},
            "eos": eos, "vocab_size": vocab}


def ids_of(x):
    return list(x["input_ids"] if isinstance(x, dict) or hasattr(x, "input_ids") else x)


def main():
    ref = {f: build(f) for f in ("llama", "gemma2")}
    with open(os.path.join(HERE, "reference.json"), "w") as fh:
        json.dump(ref, fh, indent=1)
    for f, r in ref.items():
        print(f, "vocab", r["vocab_size"], "raw", len(r["raw"]["prompt_ids"]), r["raw"]["greedy"], "chat", len(r["chat"]["prompt_ids"]), r["chat"]["greedy"])


if __name__ == "__main__":
    main()
