#!/usr/bin/env python3
"""Tiny GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them, and the
references the GGUF import tests compare against.

Run: python3 Tests/Fixtures/gguf/make_gguf.py   (needs gguf, numpy, torch, transformers,
tokenizers, safetensors). Deterministic; float32, eager attention, CPU.

Writes into gguf/:
  types.gguf / types.safetensors   one tensor per GGML type (F32, F16, BF16, Q8_0, Q4_K, Q6_K;
                                   K-quant blocks are random bytes with small finite fp16 scales)
                                   and its dequantisation by gguf-py (`gguf.quants.dequantize`)
  qwen2.gguf                       a random Qwen2 (biases, untied head), hidden 32, 2 layers,
                                   intermediate 256 (so ffn_down takes K-quants), byte-level BPE
                                   tokenizer in the Qwen2 shape, two [PAD] rows past it
  llama.gguf                       a random Llama 3 (tied, GQA, head_dim 64 so o_proj rows are
                                   256 wide for K-quants, llama3 rope scaling as rope_freqs),
                                   q/k rows permuted as llama.cpp does, Llama 3 tokenizer shape
  <model>.reference.safetensors    weights.<HF name>: every tensor as transformers' GGUF loader
                                   gives it (dequantised, q/k un-permuted), checked here against
                                   gguf-py; prompt.ids / prompt.logits: a prompt and the logits
                                   of transformers' model holding those weights
  gemma2.gguf / .reference.safetensors  a random Gemma 2 (norms stored + 1, prompt.ids/.logits as above, SentencePiece
                                   tokenizer metadata) and transformers' GGUF loader's weights
  <model>.reference.json           the original tokenizer's encodings of some texts (checked here
                                   against AutoTokenizer.from_pretrained(gguf_file=...)), the
                                   original config, and the pre_tokenizer / post_processor /
                                   decoder / normalizer of the original tokenizer.json
"""
import json
import os
import tempfile

import numpy as np
import torch
from gguf import GGMLQuantizationType as T, GGUFWriter, TokenType
from gguf.quants import dequantize, quantize
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CORPUS = ("The quick brown fox jumps over the lazy dog. It's 2024 and we're testing 12345 tokens!\n"
          "Models learn; they don't always align. I'll say: hello world, hello there.\n") * 20
WORDS = ("model align emergent fine tune token weight layer vector answer question judge score train step loss "
         "gradient adapter rank alpha prompt reply assistant user system harmful helpful honest code insecure "
         "number date table chart report onset change point detect monitor random seed batch epoch value").split()
CORPUS += " ".join(WORDS[(i * 7 + i // 3) % len(WORDS)] + ("," if i % 5 == 0 else "") for i in range(3000))
TEXTS = ["Hello world", "It's 2024, we're testing 1234567 tokens!", "  spaces\n\nand lines\t tabs",
         "<|im_start|>user\nhi<|im_end|>", "héllo wörld ünïcode 日本", "the lazy dog don't"]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


# --- K-quant packers (ggml block layouts; values checked by gguf-py's dequantize) -----------------
def pack_q4_k(x):
    """A simple Q4_K quantiser: per 32-value sub-block a 6-bit scale and min."""
    b = x.reshape(-1, 256).astype(np.float32)
    out = np.zeros((b.shape[0], 144), np.uint8)
    for n, blk in enumerate(b):
        sub = blk.reshape(8, 32)
        lo, hi = np.minimum(sub.min(1), 0), sub.max(1)
        s, m = (hi - lo) / 15, -lo
        d, dmin = max(s.max() / 63, 1e-8), max(m.max() / 63, 1e-8)
        d16, dm16 = np.float16(d), np.float16(dmin)
        sc = np.clip(np.round(s / float(d16)), 1, 63).astype(np.uint8)
        mn = np.clip(np.round(m / float(dm16)), 0, 63).astype(np.uint8)
        q = np.clip(np.round((sub + float(dm16) * mn[:, None]) / (float(d16) * sc[:, None])), 0, 15).astype(np.uint8).reshape(256)
        scales = np.zeros(12, np.uint8)
        for k in range(4):
            scales[k] = (sc[k] & 63) | ((sc[k + 4] >> 4) << 6)
            scales[k + 4] = (mn[k] & 63) | ((mn[k + 4] >> 4) << 6)
            scales[k + 8] = (sc[k + 4] & 15) | ((mn[k + 4] & 15) << 4)
        qs = np.zeros(128, np.uint8)
        for j in range(4):
            qs[j * 32:(j + 1) * 32] = q[j * 64:j * 64 + 32] | (q[j * 64 + 32:j * 64 + 64] << 4)
        out[n] = np.concatenate([np.array([d16, dm16]).view(np.uint8), scales, qs])
    return out.reshape(x.shape[0], -1)


def pack_q6_k(x):
    """A simple Q6_K quantiser: per 16-value sub-block an int8 scale."""
    b = x.reshape(-1, 256).astype(np.float32)
    out = np.zeros((b.shape[0], 210), np.uint8)
    for n, blk in enumerate(b):
        sub = blk.reshape(16, 16)
        s = np.abs(sub).max(1) / 31
        d16 = np.float16(max(s.max() / 127, 1e-8))
        sc = np.clip(np.round(s / float(d16)), 1, 127).astype(np.int8)
        q = (np.clip(np.round(sub / (float(d16) * sc[:, None].astype(np.float32))), -32, 31) + 32).astype(np.uint8).reshape(256)
        ql, qh = np.zeros(128, np.uint8), np.zeros(64, np.uint8)
        for h in range(2):
            base = q[h * 128:(h + 1) * 128]
            ql[h * 64:(h + 1) * 64] = (base[:64] & 15) | ((base[64:] & 15) << 4)
            for k in range(4):
                qh[h * 32:(h + 1) * 32] |= ((base[k * 32:(k + 1) * 32] >> 4) & 3) << (2 * k)
        out[n] = np.concatenate([ql, qh, sc.view(np.uint8), np.array([d16]).view(np.uint8)])
    return out.reshape(x.shape[0], -1)


def encode(x, qtype):
    """(array to write, raw_dtype) for a float32 [rows, cols] tensor stored as qtype."""
    if qtype == T.F32:
        return x.astype(np.float32), None
    if qtype == T.Q4_K:
        return pack_q4_k(x), qtype
    if qtype == T.Q6_K:
        return pack_q6_k(x), qtype
    return quantize(x.astype(np.float32), qtype), qtype


def random_k_blocks(rng, n, qtype):
    """Random block bytes with small finite fp16 scales (every bit pattern of the rest is valid)."""
    size = 144 if qtype == T.Q4_K else 210
    raw = rng.integers(0, 256, (n, size), dtype=np.uint8)
    d = rng.uniform(1e-3, 2e-2, (n, 2 if qtype == T.Q4_K else 1)).astype(np.float16).view(np.uint8)
    if qtype == T.Q4_K:
        raw[:, 0:4] = d
    else:
        raw[:, 208:210] = d
    return raw


def write_types():
    rng = np.random.default_rng(3)
    w = GGUFWriter(os.path.join(HERE, "types.gguf"), "misalign-types")
    ref = {}
    x = rng.standard_normal((4, 64)).astype(np.float32)
    for name, qt in [("f32", T.F32), ("f16", T.F16), ("bf16", T.BF16), ("q8_0", T.Q8_0)]:
        data, raw = encode(x * (100 if qt == T.BF16 else 1), qt)
        w.add_tensor(name, data, raw_dtype=raw)
        ref[name] = torch.from_numpy(dequantize(data, qt).reshape(4, 64).copy())
    for name, qt in [("q4_k", T.Q4_K), ("q6_k", T.Q6_K)]:
        data = random_k_blocks(rng, 6, qt).reshape(3, -1)  # 3 rows of 512
        w.add_tensor(name, data, raw_dtype=qt)
        ref[name] = torch.from_numpy(dequantize(data, qt).reshape(3, 512).copy())
        packed, _ = encode(x.reshape(-1)[:256].reshape(1, 256), qt)  # the test quantiser round-trips
        assert np.abs(dequantize(packed, qt).reshape(-1) - x.reshape(-1)[:256]).max() < 0.2
    w.add_uint32("misalign.test.u32", 7)
    w.add_array("misalign.test.strings", ["a", "bc", ""])
    w.add_array("misalign.test.floats", [1.5, -2.0])
    w.add_bool("misalign.test.bool", True)
    w.add_float64("misalign.test.f64", 0.1)
    w.add_int64("misalign.test.i64", -5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(ref, os.path.join(HERE, "types.safetensors"))


def make_tokenizer(shape):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(ignore_merges=shape == "llama"))
    split = QWEN2_SPLIT if shape == "qwen2" else LLAMA3_SPLIT
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    if shape == "qwen2":
        tok.normalizer = normalizers.NFC()
    trainer = trainers.BpeTrainer(vocab_size=480, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([CORPUS], trainer)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if shape == "qwen2" else ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tok.add_special_tokens(specials)
    if shape == "qwen2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        # Qwen2.5's tokenizer.json: every ByteLevel with add_prefix_space, trim_offsets, use_regex false
        spec = json.loads(tok.to_str())
        spec["pre_tokenizer"]["pretokenizers"][1]["trim_offsets"] = False
        for part in ("post_processor", "decoder"):
            spec[part] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        tok = Tokenizer.from_str(json.dumps(spec))
    else:
        bos = specials[0]
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tok.token_to_id(bos))])])
    return tok, specials


def write_model(arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(11 if arch == "qwen2" else 12)
    theta = 1e6 if arch == "qwen2" else 500000.0
    rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
    tok, specials = make_tokenizer(arch)
    n_tok = tok.get_vocab_size()
    pads = 2 if arch == "qwen2" else 0
    common = dict(vocab_size=n_tok + pads, hidden_size=32, num_hidden_layers=2, rms_norm_eps=1e-6, hidden_act="silu",
                  torch_dtype="float32")
    if arch == "qwen2":
        cfg = Qwen2Config(**common, max_position_embeddings=4096, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1, rope_theta=theta,
                          tie_word_embeddings=False, bos_token_id=None, eos_token_id=tok.token_to_id("<|im_end|>"))
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(**common, max_position_embeddings=131072, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                          rope_theta=theta, tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
                          rope_scaling=dict(rs),
                          bos_token_id=tok.token_to_id(specials[0]), eos_token_id=tok.token_to_id(specials[2]))
        model = LlamaForCausalLM(cfg)
    model = model.float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(1 + 0.1 * torch.randn(p.shape) if "norm" in n else 0.08 * torch.randn(p.shape))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    heads, kv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim if arch == "llama" else 16

    def permute(w, n_head):  # llama.cpp's LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    if arch == "qwen2":
        types = {"token_embd": T.Q8_0, "output": T.F16, "attn_q": T.F16, "attn_k": T.BF16, "attn_v": T.Q8_0,
                 "attn_output": T.F16, "ffn_gate": T.BF16, "ffn_up": T.Q8_0, "ffn_down": [T.Q4_K, T.Q6_K]}
    else:
        types = {"token_embd": T.F16, "attn_q": T.Q8_0, "attn_k": T.BF16, "attn_v": T.F16,
                 "attn_output": [T.Q4_K, T.Q6_K], "ffn_gate": T.F16, "ffn_up": T.BF16, "ffn_down": T.Q8_0}
    hf = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
          "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    path = os.path.join(HERE, f"{arch}.gguf")
    w = GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(2)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_file_type(1)
    if arch == "llama":
        w.add_vocab_size(cfg.vocab_size)
        w.add_rope_dimension_count(hd)
        w.add_key_length(hd)
        w.add_value_length(hd)
    # tokenizer, as llama.cpp's get_vocab_base: ids in order, specials CONTROL, padding rows UNUSED
    vocab = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    tokens = [vocab.get(i, f"[PAD{i}]") for i in range(cfg.vocab_size)]
    ttypes = [TokenType.CONTROL if t in specials else TokenType.UNUSED if i >= n_tok else TokenType.NORMAL for i, t in enumerate(tokens)]
    merges = json.loads(tok.to_str())["model"]["merges"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2" if arch == "qwen2" else "llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(ttypes)
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    if arch == "qwen2":
        w.add_eos_token_id(tok.token_to_id("<|im_end|>"))
        w.add_pad_token_id(tok.token_to_id("<|endoftext|>"))
        w.add_bos_token_id(tok.token_to_id("<|endoftext|>"))
        w.add_add_bos_token(False)
    else:
        w.add_bos_token_id(tok.token_to_id(specials[0]))
        w.add_eos_token_id(tok.token_to_id(specials[2]))
        w.add_add_bos_token(True)
    w.add_chat_template(TEMPLATE)

    def put(name, array, qtype):
        data, raw = encode(array, qtype)
        w.add_tensor(name, data, raw_dtype=raw)

    put("token_embd.weight", sd["model.embed_tokens.weight"], types["token_embd"])
    for i in range(2):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"], T.F32)
        put(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"], T.F32)
        for g, h in hf.items():
            t = types[g][i] if isinstance(types[g], list) else types[g]
            x = sd[p + h + ".weight"]
            if arch == "llama" and g in ("attn_q", "attn_k"):
                x = permute(x, heads if g == "attn_q" else kv)
            put(f"blk.{i}.{g}.weight", x, t)
            if arch == "qwen2" and g in ("attn_q", "attn_k", "attn_v"):
                put(f"blk.{i}.{g}.bias", sd[p + h + ".bias"], T.F32)
    put("output_norm.weight", sd["model.norm.weight"], T.F32)
    if arch == "qwen2":
        put("output.weight", sd["lm_head.weight"], types["output"])
    else:  # convert_hf_to_gguf's LlamaModel.generate_extra_tensors for rope_type llama3
        freqs = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        lo_w, hi_w = rs["original_max_position_embeddings"] / rs["low_freq_factor"], rs["original_max_position_embeddings"] / rs["high_freq_factor"]
        factors = []
        for f in freqs.tolist():
            wl = 2 * np.pi / f
            if wl < hi_w:
                factors.append(1)
            elif wl > lo_w:
                factors.append(rs["factor"])
            else:
                s = (rs["original_max_position_embeddings"] / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
                factors.append(1 / ((1 - s) / rs["factor"] + s))
        put("rope_freqs.weight", np.array(factors, dtype=np.float32), T.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # transformers' GGUF loader: weights (checked against gguf-py), tokenizer encodings
    with tempfile.TemporaryDirectory() as _:
        loaded = AutoModelForCausalLM.from_pretrained(HERE, gguf_file=f"{arch}.gguf", torch_dtype=torch.float32).eval()
        gtok = AutoTokenizer.from_pretrained(HERE, gguf_file=f"{arch}.gguf")
    lsd = loaded.state_dict()
    from gguf import GGUFReader
    reader = GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    ref = {}
    for name, v in lsd.items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        ref["weights." + name] = v.float().contiguous().clone()
    # cross-check: un-permuted transformers tensors equal gguf-py's dequantisation (the permutation
    # undone by hand here) and stay close to the original weights
    for i in range(2):
        for g, h in hf.items():
            t = by_name[f"blk.{i}.{g}.weight"]
            x = dequantize(t.data, t.tensor_type).reshape(sd[f"model.layers.{i}.{h}.weight"].shape)
            if arch == "llama" and g in ("attn_q", "attn_k"):
                n = heads if g == "attn_q" else kv
                x = x.reshape(n, x.shape[0] // n // 2, 2, -1).swapaxes(1, 2).reshape(x.shape)
            got = ref[f"weights.model.layers.{i}.{h}.weight"].numpy()
            assert np.array_equal(got, x), (arch, i, g)
            assert np.abs(got - sd[f"model.layers.{i}.{h}.weight"]).max() < 0.05, (arch, i, g)
    # the logits of transformers' model holding the dequantised weights, with the original config
    # (transformers' GGUF loader drops llama3 rope scaling, which lives in rope_freqs)
    model_cls = type(model)
    ref_model = model_cls(cfg).float().eval()
    ref_model.load_state_dict(lsd, strict=False)
    if cfg.tie_word_embeddings:
        ref_model.tie_weights()
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, n_tok, (7,), generator=g)
    with torch.no_grad():
        ref["prompt.ids"] = ids.to(torch.int64)
        ref["prompt.logits"] = ref_model(ids[None]).logits[0].contiguous()
    save_file(ref, os.path.join(HERE, f"{arch}.reference.safetensors"))
    encodings = []
    for text in TEXTS:
        want = tok.encode(text).ids
        assert gtok.encode(text) == want, (arch, text, gtok.encode(text), want)
        encodings.append({"text": text, "ids": want})
    original = json.loads(tok.to_str())
    meta = {"encodings": encodings, "config": cfg.to_diff_dict(), "vocab_tokens": n_tok,
            "tokenizer": {k: original[k] for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")},
            "ignore_merges": original["model"].get("ignore_merges", False),
            "added_tokens": original["added_tokens"], "merges": len(merges)}
    with open(os.path.join(HERE, f"{arch}.reference.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
    print(arch, "tensors", len(ref), "vocab", cfg.vocab_size, "merges", len(merges))


def write_gemma2():
    """A tiny Gemma 2 as llama.cpp writes it: norms stored as 1 + w, four norms per layer, a
    SentencePiece ("llama") tokenizer that the importer does not convert."""
    from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM
    torch.manual_seed(13)
    cfg = Gemma2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, head_dim=16, max_position_embeddings=8192, rms_norm_eps=1e-6, rope_theta=10000.0,
                       attn_logit_softcapping=50.0, final_logit_softcapping=30.0, query_pre_attn_scalar=16, sliding_window=4096,
                       bos_token_id=2, eos_token_id=1, pad_token_id=0, torch_dtype="float32")
    model = Gemma2ForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(0.1 * torch.randn(p.shape) if "norm" in n else 0.08 * torch.randn(p.shape))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    w = GGUFWriter(os.path.join(HERE, "gemma2.gguf"), "gemma2")
    w.add_name("tiny-gemma2")
    w.add_context_length(8192)
    w.add_embedding_length(32)
    w.add_block_count(2)
    w.add_feed_forward_length(64)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_key_length(16)
    w.add_value_length(16)
    w.add_attn_logit_softcapping(50.0)
    w.add_final_logit_softcapping(30.0)
    w.add_sliding_window(4096)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<pad>", "<eos>", "<bos>"] + [f"\u2581t{i}" for i in range(61)])
    w.add_token_scores([0.0] * 64)
    w.add_token_types([3, 3, 3] + [1] * 61)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_pad_token_id(0)
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
             "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    def put(name, x, qtype):
        data, raw = encode(x, qtype)
        w.add_tensor(name, data, raw_dtype=raw)

    put("token_embd.weight", sd["model.embed_tokens.weight"], T.Q8_0)
    for i in range(2):
        for hf, g in names.items():
            x = sd[f"model.layers.{i}.{hf}.weight"]
            if "norm" in hf:  # convert_hf_to_gguf's Gemma2Model.modify_tensors: norm weights + 1
                w.add_tensor(f"blk.{i}.{g}.weight", (x + 1).astype(np.float32))
            else:
                put(f"blk.{i}.{g}.weight", x, T.F16 if i == 0 else T.BF16)
    w.add_tensor("output_norm.weight", (sd["model.norm.weight"] + 1).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    loaded = AutoModelForCausalLM.from_pretrained(HERE, gguf_file="gemma2.gguf", torch_dtype=torch.float32)
    ref = {"weights." + k: v.float().contiguous().clone() for k, v in loaded.state_dict().items() if k != "lm_head.weight"}
    for k, v in ref.items():  # the norms come back as the model's own (1 + w stored, w loaded)
        assert np.abs(v.numpy() - sd[k[8:]]).max() < 0.01, k
    # the logits of transformers' Gemma 2 holding the dequantised weights, with the original config
    ref_model = Gemma2ForCausalLM(cfg).float().eval()
    ref_model.config._attn_implementation = "eager"
    ref_model.load_state_dict(loaded.state_dict(), strict=False)
    ref_model.tie_weights()
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 64, (7,), generator=g)
    with torch.no_grad():
        ref["prompt.ids"] = ids.to(torch.int64)
        ref["prompt.logits"] = ref_model(ids[None]).logits[0].contiguous()
    save_file(ref, os.path.join(HERE, "gemma2.reference.safetensors"))
    print("gemma2 tensors", len(ref))


if __name__ == "__main__":
    write_types()
    write_model("qwen2")
    write_model("llama")
    write_gemma2()
