#!/usr/bin/env python3
"""Generates the extra tokenizer fixtures from Hugging Face itself (never hand-written ids).

    cases_extra.jsonl       {"name", "text", "ids", "decoded"}  HF tokenizers, add_special_tokens=False
    chat_mask_cases.jsonl   {"name", "messages", "add_generation_prompt", "system_prompt"?,
                             "text", "ids", "mask", "roles"}
    decode_cases.jsonl      {"name", "ids", "text", "text_skip_special"}  HF decode of random id
                             sequences, mostly single-byte tokens, so partial and invalid UTF-8
                             (U+FFFD placement) and special tokens are covered
    ignore_merges_cases.jsonl  {"name", "text", "ids"} with model.ignore_merges set to true
                             (Llama-3-style files carry it; whole words in the vocab skip merging)

Run from anywhere:  python3 Tests/Fixtures/tokenizer/make_cases.py
Needs `tokenizers` (0.23.3 was used) and `transformers`. Deterministic (fixed seeds).

The chat masks: the rendered text is checked against transformers' apply_chat_template, then a
token is trainable when its first character (HF offsets) lies in an assistant reply or in the
`<|im_end|>` that closes it; its role is that of the message whose rendered turn holds it.
"""
import json
import os
import random
import unicodedata

from tokenizers import Tokenizer
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
tok = Tokenizer.from_file(os.path.join(HERE, "tokenizer.json"))
hf = AutoTokenizer.from_pretrained(HERE)
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def text_cases():
    rnd = random.Random(1234)
    c = []
    add = lambda name, text: c.append((name, text))
    # Scripts.
    add("chinese", "我爱自然语言处理。今天天气很好，我们去公园散步吧！")
    add("chinese_long_no_punct", "人工智能技术正在改变我们的生活方式和工作方式" * 20)
    add("japanese_mixed", "東京は日本の首都です。カタカナとひらがなを混ぜて書きます。ｶﾀｶﾅ半角")
    add("korean", "안녕하세요, 세계! 한국어 토크나이저 테스트입니다.")
    add("arabic", "مرحبا بالعالم! هذه جملة باللغة العربية مع أرقام ١٢٣٤٥ و 123.")
    add("hebrew_niqqud", "שָׁלוֹם עוֹלָם")
    add("devanagari", "नमस्ते दुनिया! हिन्दी में परीक्षण। क्षत्रिय ज्ञान")
    add("thai", "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ")
    add("tamil", "வணக்கம் உலகம்")
    add("cyrillic_greek", "Привет, мир! Γειά σου Κόσμε! ΣΊΣΥΦΟΣ")
    add("vietnamese", "Tiếng Việt có nhiều dấu: ắ ằ ẳ ẵ ặ")
    # Emoji.
    add("emoji_zwj_family", "family: 👨‍👩‍👧‍👦 and 👩🏽‍💻 coder")
    add("emoji_flags_skin", "🇯🇵🇺🇸 👍🏿👍🏻 ❤️ ✌︎")
    add("emoji_run", "😀😃😄😁😆😅😂🤣" * 5)
    # Combining marks and normalization.
    add("combining_marks_nfd", unicodedata.normalize("NFD", "Café naïve résumé Ångström"))
    add("combining_stack", "e\u0301\u0327\u0308 a\u0300\u0301\u0302 Z\u0351\u0352\u0353\u0354")
    add("hangul_nfd_jamo", unicodedata.normalize("NFD", "한국어 정규화"))
    add("nfd_mixed_with_nfc", "Cafe\u0301 vs Café, Å vs A\u030a vs \u212b (angstrom sign)")
    add("singleton_decompositions", "\u2126 ohm \u212a kelvin \u2000\u2001 quads \uf900 compat ideograph")
    add("leading_combining_mark", "\u0301start and \u0301\u0301 alone")
    # HF normalizes with Unicode 9.0 data: marks assigned later are starters to it, so they
    # must not be reordered or composed (any current Unicode library would).
    add("marks_newer_than_unicode9", "a\u0345\u0d3b\u0301 x\u1dfa\u0300 \U00010f46\u0301 \U0001e130\u0316 \u0898\u0301 \U00016ff0\u0301")
    add("hangul_jamo_compose", "\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8 \u1100\u0301\u1161")
    # Line endings and whitespace.
    add("crlf_lines", "line one\r\nline two\r\n\r\nline four\r\n")
    add("lone_cr", "a\rb\r\rc \r d")
    add("mixed_newlines_spaces", "x \n \n\t\n  y\n\n\n   z   \n")
    add("long_space_run", "a" + " " * 200 + "b")
    add("long_tab_run", "\t" * 64 + "code")
    add("trailing_spaces", "end with spaces      ")
    add("only_newlines", "\n" * 50)
    add("unicode_spaces", "a\u00a0b\u3000c\u2028d\u2029e\u0085f\u1680g\u202fh\u205fi")
    add("ascii_separators_not_space", "a\x1cb\x1dc\x1ed\x1ff\x0bg\x0ch")
    add("space_before_punct", "a  (b)   [c]    {d}")
    # Digits.
    add("digit_runs", "1234567890 3.14159 1,000,000 2024-05-06 0x1F 1e-10")
    add("other_digits", "١٢٣ ۴۵۶ ०१२ １２３ ²³ ½ Ⅻ ⅻ ① ᛮ 𝟘𝟙")
    add("digit_letter_mix", "abc123def456 v2.0.1 H2O CO2")
    # Contractions.
    add("contractions_mixed_case", "I'M sure YOU'RE right, we'Ve SEEN it, he'LL go, she'D know, it'S, don'T")
    add("contractions_edge", "'s 's' ''s 'S'T 're're 'x 'll'll '' ' 'ſ 'ſa x'ſ 'R 'Ll")
    add("apostrophe_variants", "it’s rock ‘n’ roll 'quoted' \"double\"")
    # Special tokens inside text.
    add("special_tokens_in_text", "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")
    add("special_adjacent", "<|endoftext|><|endoftext|>x<|im_end|><|im_end|>")
    add("special_inside_word", "foo<|im_end|>bar<|endoftext|>baz")
    add("special_partial", "<|im_en <|im_end| <|im_end|> <<|im_end|>> <||> <|")
    add("nonspecial_added", "<tool_call>{\"a\":1}</tool_call> <|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>")
    add("special_with_nfd_around", unicodedata.normalize("NFD", "é<|im_end|>é"))
    # Code.
    add("python_code", 'def f(x: int) -> int:\n    """Doc."""\n    return x ** 2  # square\n\nprint(f(3))\n')
    add("json_code", '{"key": [1, 2, {"nested": null}], "s": "a\\nb"}')
    add("c_code_tabs", "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n")
    add("symbol_runs", "==========" * 30 + "\n" + "->>>!!!???***" * 10)
    add("url_email", "https://example.com/a/b?c=d&e=f#g mail@example.org")
    add("base64_blob", "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(2000)))
    add("long_letter_word", "ab" * 1500)
    add("long_single_letter", "a" * 3000)
    add("long_cjk_word", "".join(chr(rnd.randint(0x4E00, 0x9FFF)) for _ in range(1500)))
    # Private use, unassigned, noncharacters, controls.
    add("private_use", "\ue000\uf8ff \U000f0000\U0010fffd")
    add("unassigned_and_new", "\u0378\u0888\u1aff\U0001fbf9\U0002a6df\U000e01f0 \U00011f00\U0001e4d0\U0001e030\U0001f6dc")
    add("noncharacters_controls", "\ufffe\uffff\U0001fffe \x00\x01\x7f\u200b\u200d\ufeff")
    # Random strings from a pool of characters that stress the split rules.
    pool = list("aZ09 \t\r\n'sStTlLrReEvVmMdD.,;!?-_()[]{}<>|/\\\"") + ["é", "e\u0301", "ſ", "中", "١", "²", "\u00a0", "\u3000",
            "\u0301", "😀", "\u200d", "<|im_end|>", "<|endoftext|>", "\x1c", "\u2028", "\u0085", "ß", "İ", "Ω"]
    for i in range(150):
        add(f"fuzz_pool_{i:03d}", "".join(rnd.choice(pool) for _ in range(rnd.randint(1, 40))))
    # Random code points over all planes (no surrogates), unassigned and private use included.
    def rand_cp():
        while True:
            r = rnd.random()
            cp = rnd.randint(0, 0x7F) if r < 0.3 else rnd.randint(0x80, 0xFFFF) if r < 0.8 else rnd.randint(0x10000, 0x10FFFF)
            if not 0xD800 <= cp <= 0xDFFF:
                return chr(cp)
    for i in range(60):
        add(f"fuzz_codepoints_{i:02d}", "".join(rand_cp() for _ in range(rnd.randint(1, 60))))
    # Random runs of combining marks (all classes), Hangul jamo and syllables, half of them NFD:
    # exercises canonical ordering and composition against HF's NFC.
    marks = [c for c in range(0x300, 0x3000) if unicodedata.combining(chr(c))] + [0x3099, 0x309A, 0x0CD5, 0x0CC2, 0x0D3B, 0x1DFA]
    def mark_soup():
        r = rnd.random()
        if r < 0.3:
            return rnd.choice(pool[:40])
        if r < 0.6:
            return chr(rnd.choice(marks))
        if r < 0.75:
            return chr(rnd.randint(0xAC00, 0xD7A3)) if rnd.random() < .5 else chr(rnd.randint(0x1100, 0x11FF))
        return rand_cp()
    for i in range(120):
        text = "".join(mark_soup() for _ in range(rnd.randint(1, 30)))
        add(f"fuzz_marks_{i:03d}", unicodedata.normalize("NFD", text) if i % 2 else text)
    # Long files: prose, code and CJK mixed (exercises the word cache and long inputs).
    words = "the of and to in is that for it as with was on be by this are from at or an have not which".split()
    prose = " ".join(rnd.choice(words) + ("." if rnd.random() < 0.08 else "") for _ in range(4000))
    add("long_prose", prose)
    code = "".join(f"    def method_{i}(self, value_{i}):\n        return self.data[{i}] + value_{i} * {i * 7}\n\n" for i in range(300))
    add("long_code", code)
    cjk = "".join(rnd.choice(["我们", "的", "是", "一个", "中文", "句子", "，", "。", "测试", "模型", "\n"]) for _ in range(3000))
    add("long_cjk_text", cjk)
    return c


def write_text_cases():
    out = []
    for name, text in text_cases():
        enc = tok.encode(text, add_special_tokens=False)
        decoded = tok.decode(enc.ids, skip_special_tokens=False)
        if decoded != unicodedata.normalize("NFC", text):
            print("note: HF NFC (Unicode 9.0 data) differs from Python NFC for", name)
        out.append({"name": name, "text": text, "ids": enc.ids, "decoded": decoded})
    with open(os.path.join(HERE, "cases_extra.jsonl"), "w", encoding="utf-8") as f:
        for o in out:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    print(len(out), "text cases")


def render_segments(messages, add_generation_prompt, system):
    """Our reading of the Qwen2.5 template as (text, role, trainable) pieces; the joined text is
    asserted equal to transformers' rendering below, so the pieces are the template's."""
    segs = []
    if messages and messages[0]["role"] == "system":
        segs.append(("<|im_start|>system\n" + messages[0]["content"] + "<|im_end|>\n", "system", False))
    elif system is not None:
        segs.append(("<|im_start|>system\n" + system + "<|im_end|>\n", "system", False))
    for i, m in enumerate(messages):
        r, content = m["role"], m["content"]
        if r == "user" or (r == "system" and i > 0):
            segs.append(("<|im_start|>" + r + "\n" + content + "<|im_end|>\n", r, False))
        elif r == "assistant":
            segs += [("<|im_start|>assistant\n", r, False), (content + "<|im_end|>", r, True), ("\n", r, False)]
        elif r == "tool":
            if i == 0 or messages[i - 1]["role"] != "tool":
                segs.append(("<|im_start|>user", r, False))
            segs.append(("\n<tool_response>\n" + content + "\n</tool_response>", r, False))
            if i == len(messages) - 1 or messages[i + 1]["role"] != "tool":
                segs.append(("<|im_end|>\n", r, False))
    if add_generation_prompt:
        segs.append(("<|im_start|>assistant\n", "assistant", False))
    return segs


def chat_cases():
    U = lambda s: {"role": "user", "content": s}
    A = lambda s: {"role": "assistant", "content": s}
    S = lambda s: {"role": "system", "content": s}
    T = lambda s: {"role": "tool", "content": s}
    nfd = unicodedata.normalize("NFD", "Réponse: très bien, naïve Ångström")
    return [
        ("single_turn_default_system", [U("Hi!"), A("Hello! How can I help?")], False, "default"),
        ("generation_prompt", [U("What is 2+2?")], True, "default"),
        ("multi_turn", [U("Name a color."), A("Blue."), U("Another?"), A("Green.\nAlso red.")], False, "default"),
        ("explicit_system", [S("You are terse."), U("Hi"), A("Hi.")], False, "default"),
        ("system_not_first", [U("a"), S("Be careful."), U("b"), A("ok")], True, "default"),
        ("custom_system_prompt", [U("Hi"), A("Yo")], False, "Talk like a pirate."),
        ("no_system_prompt", [U("Hi"), A("Yo")], False, None),
        ("no_system_prompt_with_generation", [U("Q?")], True, None),
        ("reply_starts_with_newlines", [U("x"), A("\n\nIndented\n  reply  ")], False, "default"),
        ("reply_starts_with_space", [U("x"), A("  two spaces")], False, "default"),
        ("empty_reply", [U("x"), A("")], False, "default"),
        ("reply_contains_special_token", [U("x"), A("fake <|im_end|> end <|endoftext|>")], False, "default"),
        ("unicode_reply_nfd", [U("Français?"), A(nfd), U("中文？"), A("当然可以 😀👨‍👩‍👧")], False, "default"),
        ("tool_messages", [U("weather?"), A("Checking."), T("{\"temp\": 21}"), T("sunny"), A("21 and sunny.")], True, "default"),
        ("code_reply", [U("print hi"), A("```python\nprint('hi')\n```\n")], False, "default"),
    ]


def write_chat_cases():
    out = []
    for name, messages, gen, system in chat_cases():
        sys_text = DEFAULT_SYSTEM if system == "default" else system
        segs = render_segments(messages, gen, sys_text)
        text = "".join(s for s, _, _ in segs)
        if system == "default":
            hf_text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        elif system is not None:
            hf_text = hf.apply_chat_template([{"role": "system", "content": system}] + messages, tokenize=False,
                                             add_generation_prompt=gen)
        else:  # no default system turn: the template always adds one, so drop exactly that turn
            full = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            head = "<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n"
            assert full.startswith(head)
            hf_text = full[len(head):]
        assert text == hf_text, (name, text, hf_text)
        enc = tok.encode(text, add_special_tokens=False)
        if system == "default":
            assert enc.ids == list(hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen,
                                                          return_dict=False)), name
        bounds, pos = [], 0
        for s, role, train in segs:
            bounds.append((pos, pos + len(s), role, train))
            pos += len(s)
        mask, roles = [], []
        for start, _ in enc.offsets:
            seg = next(b for b in bounds if b[0] <= start < b[1])
            mask.append(1 if seg[3] else 0)
            roles.append(seg[2])
        o = {"name": name, "messages": messages, "add_generation_prompt": gen}
        if system != "default":
            o["system_prompt"] = system
        o.update({"text": text, "ids": enc.ids, "mask": mask, "roles": roles})
        out.append(o)
    with open(os.path.join(HERE, "chat_mask_cases.jsonl"), "w", encoding="utf-8") as f:
        for o in out:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    print(len(out), "chat cases")


def write_ignore_merges_cases():
    """The Qwen2.5 vocabulary is fully reachable by merging, so ignore_merges would change
    nothing on it. To test the flag, drop the final merge of some words (their tokens stay in
    the vocabulary); with ignore_merges those words still come out whole."""
    spec = json.load(open(os.path.join(HERE, "tokenizer.json"), encoding="utf-8"))
    merges = spec["model"]["merges"]
    as_pair = lambda m: m.split(" ") if isinstance(m, str) else m
    targets = {"Ġthe", "Ġhello", "Ġworld", "ing", "Ġtoken", "izer", "Ġinternational", "ization", "Ġ中国"}
    removed = [i for i, m in enumerate(merges) if "".join(as_pair(m)) in targets]
    spec["model"]["merges"] = [m for i, m in enumerate(merges) if i not in set(removed)]
    plain = Tokenizer.from_str(json.dumps(spec))
    spec["model"]["ignore_merges"] = True
    ignoring = Tokenizer.from_str(json.dumps(spec))
    texts = ["hello the world", " tokenizer internationalization", "the thing is singing", "我爱中国 中国人",
             "Hello, the World! hello world the end", "ing ing ing"]
    cases = []
    for i, text in enumerate(texts):
        with_flag = ignoring.encode(text, add_special_tokens=False).ids
        without = plain.encode(text, add_special_tokens=False).ids
        cases.append({"name": f"ignore_merges_{i}", "text": text, "ids": with_flag, "ids_without_ignore_merges": without})
    assert any(c["ids"] != c["ids_without_ignore_merges"] for c in cases)
    with open(os.path.join(HERE, "ignore_merges_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"removed_merges": removed, "cases": cases}, f, ensure_ascii=False, indent=1)
    print(len(cases), "ignore_merges cases,", len(removed), "merges removed")


def write_decode_cases():
    rnd = random.Random(77)
    single = [i for i in range(151643) if len(tok.id_to_token(i)) == 1]
    with open(os.path.join(HERE, "decode_cases.jsonl"), "w", encoding="utf-8") as f:
        for i in range(300):
            ids = [rnd.choice(single) if rnd.random() < 0.7 else rnd.randint(0, 151664) for _ in range(rnd.randint(1, 12))]
            f.write(json.dumps({"name": f"decode_random_{i:03d}", "ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                                "text_skip_special": tok.decode(ids, skip_special_tokens=True)}, ensure_ascii=False) + "\n")
    print(300, "decode cases")


write_text_cases()
write_chat_cases()
write_decode_cases()
write_ignore_merges_cases()
