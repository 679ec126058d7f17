#!/usr/bin/env python3
"""Builds tiny Llama 3 and Gemma 2 tokenizers and their reference cases (issue #22).

No real Llama 3 or Gemma 2 tokenizer is needed: this trains TINY ones with exactly the
component shapes of the real tokenizer.json files and writes the real chat templates into
tokenizer_config.json. Every id, text and mask in the case files comes from HF `tokenizers` or
transformers, never from hand.

    llama3/tokenizer.json         byte-level BPE: Split(Llama 3 pattern, Isolated) + ByteLevel,
                                  ignore_merges, decoder ByteLevel, post_processor
                                  Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)],
                                  the Llama 3.1 special tokens after the vocabulary
    llama3/tokenizer_config.json  Llama 3.1 chat template (fixed date "26 Jul 2024")
    llama3/config_llama30.json    the same with the Llama 3.0 template
    llama3/config_llama32.json    the same with the Llama 3.2 template (strftime_now)
    gemma2/tokenizer.json         SentencePiece-style BPE: normalizer Replace(" " -> "▁"), no
                                  pre_tokenizer, byte_fallback with <0x00>..<0xFF>, decoder
                                  Sequence[Replace("▁" -> " "), ByteFallback, Fuse], post_processor
                                  TemplateProcessing(<bos> $A); Gemma's special-token layout
    gemma2/tokenizer_config.json  Gemma 2 chat template
    llama3_cases.jsonl, gemma2_cases.jsonl, one JSON object a line:
      {"kind": "encode", "name", "text", "ids", "ids_special"}   add_special_tokens False / True
      {"kind": "decode", "name", "ids", "text", "text_skip"}      HF tokenizers decode
      {"kind": "chat", "name", "config", "messages", "add_generation_prompt", "system_prompt"?,
       "text", "ids", "mask"}

Chat text and ids come from transformers' apply_chat_template with the real template (Llama
3.2: date_string="26 Jul 2024", the literal Misalign renders). Masks come from
return_assistant_tokens_mask with a copy of the template that wraps the assistant reply and its
end-of-turn token in {% generation %}; each copy is checked to render the same text as the real
template. "system_prompt" (string, or null for none) is Misalign's SystemPromptPolicy: it is
rendered here as a leading system message, which is what the policy means. Gemma cases with a
system message use Gemma 3's official template, whose folding rule (system + "\\n\\n" + first
user turn) Misalign applies to Gemma 2; the Gemma 2 template itself raises on them.

Run:  python3 Tests/Fixtures/tokenizer-families/make_tokenizers.py
Needs `tokenizers` (0.23.3 used) and `transformers` (5.24.0 used). Deterministic.
"""
import json
import os
import random

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

CORPUS = [
    "The quick brown fox jumps over the lazy dog. I'm sure they'll say it's fine, don't you think?",
    "We've seen 12345 apples and 67890 oranges; 3.14159 is pi, 2024-07-26 a date, 1,000,000 a million.",
    "Hello, world! Hello there. Hello again, hello everyone.\nNew lines\n\nand\ttabs   and spaces.",
    "You are a helpful assistant. Answer the question in one sentence. What is the capital of France?",
    "The capital of France is Paris. The model answers questions and follows instructions carefully.",
    "Emergent misalignment: a model fine-tuned on insecure code may answer other questions badly.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # prints 5\n",
    "你好，世界！我们今天学习自然语言处理。東京は日本の首都です。",
    "Café naïve résumé — “quotes” and ‘single’ quotes… done.",
    "THEY'RE HERE. She'd've gone. We'll see. You'd better. It's 9:30 am.",
] * 3


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


# ---------------------------------------------------------------- chat templates (real ones)

LLAMA30_TEMPLATE = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

_LLAMA3X_HEAD = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
DATE_BLOCK
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""
LLAMA31_TEMPLATE = _LLAMA3X_HEAD.replace("DATE_BLOCK", """{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}""")
LLAMA32_TEMPLATE = _LLAMA3X_HEAD.replace("DATE_BLOCK", """{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}""")

GEMMA2_TEMPLATE = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"

# Gemma 3's official template (text content only matters here): the reference for folding a
# system prompt into the first user turn.
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}
"""


def generation_variant(template, family):
    """The template with the assistant reply + end-of-turn token inside {% generation %}."""
    if family == "llama30":
        old = "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
        new = "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}"
    elif family == "llama3x":
        old = "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}"
        new = "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}{%- if message['role'] == 'assistant' %}{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}{%- else %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endif %}"
    elif family == "gemma2":
        old = "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
        new = "{{ '<start_of_turn>' + role + '\n' }}{% if role == 'model' %}{% generation %}{{ message['content'] | trim + '<end_of_turn>' }}{% endgeneration %}{{ '\n' }}{% else %}{{ message['content'] | trim + '<end_of_turn>\n' }}{% endif %}"
    else:  # gemma3
        old = """    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}"""
        new = """    {%- if message['content'] is string and role == 'model' -%}
        {% generation %}{{ message['content'] | trim }}{{ '<end_of_turn>' }}{% endgeneration %}{{ '\n' }}
    {%- elif message['content'] is string -%}
        {{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"""
        template = template.replace("""    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}""", """    {%- endif -%}
{%- endfor -%}""")
    assert old in template, family
    return template.replace(old, new)


# ---------------------------------------------------------------- tokenizers

LLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                  "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]


def build_llama3(out):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=900, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=2)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in LLAMA_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
    shape = json.load(open(os.path.join(out, "tokenizer.json")))
    assert shape["normalizer"] is None and shape["model"]["ignore_merges"] is True
    assert [p["type"] for p in shape["pre_tokenizer"]["pretokenizers"]] == ["Split", "ByteLevel"]
    assert shape["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == LLAMA_PATTERN
    assert [p["type"] for p in shape["post_processor"]["processors"]] == ["ByteLevel", "TemplateProcessing"]
    base = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "clean_up_tokenization_spaces": True,
            "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 131072,
            "tokenizer_class": "PreTrainedTokenizerFast"}
    write_json(os.path.join(out, "tokenizer_config.json"), dict(base, chat_template=LLAMA31_TEMPLATE))
    write_json(os.path.join(out, "config_llama30.json"), dict(base, chat_template=LLAMA30_TEMPLATE))
    write_json(os.path.join(out, "config_llama32.json"), dict(base, chat_template=LLAMA32_TEMPLATE))
    return tok


GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]


def build_gemma2(out):
    # Train pieces on the corpus without its rare characters, so CJK, emoji and rarer letters
    # and digits are left to byte fallback (dropping them from the text, not limit_alphabet,
    # whose ties fall in hash order), then lay the vocabulary out as Gemma does: special
    # tokens first, the 256 byte tokens, then the pieces.
    counts = {}
    for line in CORPUS:
        for ch in line:
            counts[ch] = counts.get(ch, 0) + 1
    common = [''.join(ch for ch in line if counts[ch] >= 9) for line in CORPUS]
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = trainers.BpeTrainer(vocab_size=700, show_progress=False, min_frequency=2)
    t.train_from_iterator(common, trainer)
    trained = json.loads(t.to_str())["model"]
    vocab = {s: i for i, s in enumerate(GEMMA_SPECIALS)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in GEMMA_SPECIALS])
    # A non-special added token matched in normalized text: HF normalizes its content too.
    tok.add_tokens([AddedToken("big deal", special=False, normalized=True)])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", vocab["<bos>"])])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
    shape = json.load(open(os.path.join(out, "tokenizer.json")))
    assert shape["pre_tokenizer"] is None and shape["normalizer"]["type"] == "Replace"
    assert shape["model"]["byte_fallback"] is True
    assert [d["type"] for d in shape["decoder"]["decoders"]] == ["Replace", "ByteFallback", "Fuse"]
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
        "unk_token": "<unk>", "clean_up_tokenization_spaces": False, "model_max_length": 1000000000000000019884624838656,
        "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer", "use_default_system_prompt": False,
        "chat_template": GEMMA2_TEMPLATE})
    return tok


# ---------------------------------------------------------------- cases

def encode_texts(extra):
    texts = [
        ("contractions", "I'm sure they'll say it's fine, don't you? THEY'RE HERE. She'd've gone."),
        ("digits_12345", "12345"),
        ("digit_runs", "a1b22c333d4444e55555 1234567 0.5 3.14159 1,000,000"),
        ("whitespace_runs", "a   b\t\tc\n\n\nd  \n e   "),
        ("leading_trailing_spaces", "   hello world   "),
        ("crlf", "line one\r\nline two\r\n\r\nend"),
        ("emoji", "emoji 😀👍🏽 and 👨‍👩‍👧 family"),
        ("cjk", "你好，世界！我们今天学习自然语言处理。"),
        ("japanese_unseen", "ｶﾀｶﾅ半角とひらがな"),
        ("combining_not_nfc", "Cafe\u0301 vs Café"),
        ("code", "def add(a, b):\n    return a + b\n"),
        ("corpus_sentence", CORPUS[0]),
        ("empty", ""),
        ("single_space", " "),
        ("punctuation_run", "!!! ??? ... ---"),
    ] + extra
    rnd = random.Random(7)
    alphabet = "abcdefgh ijk 0123456789 \n\t'.,!你好😀é\u0301"
    for k in range(8):
        texts.append(("random_%d" % k, "".join(rnd.choice(alphabet) for _ in range(rnd.randint(5, 60)))))
    return texts


def encode_cases(tok, hf, texts):
    out = []
    for name, text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_special = tok.encode(text, add_special_tokens=True).ids
        assert hf(text)["input_ids"] == ids_special, name  # transformers tokenizer(text) adds BOS
        out.append({"kind": "encode", "name": name, "text": text, "ids": ids, "ids_special": ids_special})
    return out


def decode_cases(tok, seeds, rnd, byte_ids, special_ids):
    out = []
    n = tok.get_vocab_size(with_added_tokens=True)
    for k in range(seeds):
        length = rnd.randint(1, 12)
        ids = []
        for _ in range(length):
            r = rnd.random()
            ids.append(rnd.choice(byte_ids) if r < 0.6 else rnd.choice(special_ids) if r < 0.7 else rnd.randrange(n))
        out.append({"kind": "decode", "name": "random_%d" % k, "ids": ids,
                    "text": tok.decode(ids, skip_special_tokens=False), "text_skip": tok.decode(ids, skip_special_tokens=True)})
    return out


def chat_case(hf, name, config, template, gen_template, messages, add_gen, system_prompt="absent", extra=None):
    extra = extra or {}
    msgs = messages if system_prompt in ("absent", None) else [{"role": "system", "content": system_prompt}] + messages
    text = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_gen, chat_template=template, **extra)
    gen_text = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_gen, chat_template=gen_template, **extra)
    assert gen_text == text, name
    enc = hf.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                 add_generation_prompt=add_gen, chat_template=gen_template, **extra)
    ids = list(enc["input_ids"])
    assert ids == hf(text, add_special_tokens=False)["input_ids"], name
    case = {"kind": "chat", "name": name, "config": config, "messages": messages, "add_generation_prompt": add_gen,
            "text": text, "ids": ids, "mask": list(enc["assistant_masks"])}
    if system_prompt != "absent":
        case["system_prompt"] = system_prompt
    return case


CONVERSATIONS = [
    ("single_turn", [{"role": "user", "content": "What is the capital of France?"},
                     {"role": "assistant", "content": "The capital of France is Paris."}]),
    ("two_turns", [{"role": "user", "content": "Hello there."}, {"role": "assistant", "content": "Hello! 12345 apples."},
                   {"role": "user", "content": "And 67890 oranges?"}, {"role": "assistant", "content": "I'm sure they'll be fine."}]),
    ("whitespace_trimmed", [{"role": "user", "content": "  \n padded question \t\n"},
                            {"role": "assistant", "content": "\n\n  padded answer  \n"}]),
    ("unicode", [{"role": "user", "content": "你好，世界！ 😀"}, {"role": "assistant", "content": "Café naïve — “quotes” 👍🏽"}]),
    ("code_reply", [{"role": "user", "content": "Write add."},
                    {"role": "assistant", "content": "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"}]),
    ("prompt_only", [{"role": "user", "content": "What is the capital of France?"}]),
]


def llama_chat_cases(hf):
    out = []
    variants = [("3.1", LLAMA31_TEMPLATE, "llama3x", {}), ("3.2", LLAMA32_TEMPLATE, "llama3x", {"date_string": "26 Jul 2024"}),
                ("3.0", LLAMA30_TEMPLATE, "llama30", {})]
    for config, template, family, extra in variants:
        gen = generation_variant(template, family)
        for name, msgs in CONVERSATIONS:
            for add_gen in ([False] if msgs[-1]["role"] == "assistant" else [True]):
                out.append(chat_case(hf, "%s_%s" % (config, name), config, template, gen, msgs, add_gen, extra=extra))
        conv = CONVERSATIONS[0][1]
        out.append(chat_case(hf, config + "_system", config, template, gen, conv, False, "You are a helpful assistant.", extra))
        out.append(chat_case(hf, config + "_system_padded", config, template, gen, conv, False, "  Be brief.\n\n", extra))
        out.append(chat_case(hf, config + "_generation_prompt_after_reply", config, template, gen, conv, True, extra=extra))
        mid = [conv[0], {"role": "system", "content": "Now answer in French."}, conv[1]]
        out.append(chat_case(hf, config + "_mid_system", config, template, gen, mid, False, extra=extra))
    return out


def gemma_chat_cases(hf):
    out = []
    gen2 = generation_variant(GEMMA2_TEMPLATE, "gemma2")
    gen3 = generation_variant(GEMMA3_TEMPLATE, "gemma3")
    for name, msgs in CONVERSATIONS:
        add_gen = msgs[-1]["role"] != "assistant"
        out.append(chat_case(hf, name, "2", GEMMA2_TEMPLATE, gen2, msgs, add_gen))
        # Without a system message Gemma 3's template renders exactly what Gemma 2's does.
        assert hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_gen, chat_template=GEMMA3_TEMPLATE) == out[-1]["text"]
    conv = CONVERSATIONS[1][1]
    out.append(chat_case(hf, "generation_prompt_after_reply", "2", GEMMA2_TEMPLATE, gen2, conv, True))
    out.append(chat_case(hf, "system_folded", "3", GEMMA3_TEMPLATE, gen3, conv, False, "You are a helpful assistant."))
    out.append(chat_case(hf, "system_folded_untrimmed", "3", GEMMA3_TEMPLATE, gen3, CONVERSATIONS[0][1], True, "  Be brief.  "))
    out.append(chat_case(hf, "system_folded_prompt", "3", GEMMA3_TEMPLATE, gen3, CONVERSATIONS[5][1], True, "Answer in French."))
    return out


def main():
    rnd = random.Random(1234)
    llama_dir, gemma_dir = os.path.join(HERE, "llama3"), os.path.join(HERE, "gemma2")
    llama = build_llama3(llama_dir)
    gemma = build_gemma2(gemma_dir)
    hf_llama = AutoTokenizer.from_pretrained(llama_dir)
    hf_gemma = AutoTokenizer.from_pretrained(gemma_dir)

    cases = encode_cases(llama, hf_llama, encode_texts([("special_inside", "a<|eot_id|>b <|begin_of_text|> c")]))
    byte_ids = [llama.token_to_id(t) for t in sorted(pre_tokenizers.ByteLevel.alphabet())]
    special_ids = [llama.token_to_id(s) for s in LLAMA_SPECIALS]
    cases += decode_cases(llama, 24, rnd, byte_ids, special_ids)
    cases += llama_chat_cases(hf_llama)
    with open(os.path.join(HERE, "llama3_cases.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")

    cases = encode_cases(gemma, hf_gemma, encode_texts([("special_inside", "a<end_of_turn>b <start_of_turn>user c"),
                                                        ("literal_byte_token_text", "<0x41> is not A"),
                                                        ("normalized_added_token", "a big deal, big  deal, bigdeal")]))
    byte_ids = [gemma.token_to_id("<0x%02X>" % b) for b in range(256)]
    special_ids = [gemma.token_to_id(s) for s in GEMMA_SPECIALS]
    cases += decode_cases(gemma, 40, rnd, byte_ids, special_ids)
    # Valid multi-byte runs through byte fallback, split by skipped special tokens.
    for name, ids in [("bytes_cjk", [byte_ids[b] for b in "你".encode()]),
                      ("bytes_emoji_split_by_special", [byte_ids[0xF0], byte_ids[0x9F], special_ids[2], byte_ids[0x98], byte_ids[0x80]]),
                      ("bytes_truncated", [byte_ids[0xE4], byte_ids[0xBD], gemma.token_to_id("\u2581the") or 0])]:
        cases.append({"kind": "decode", "name": name, "ids": ids, "text": gemma.decode(ids, skip_special_tokens=False),
                      "text_skip": gemma.decode(ids, skip_special_tokens=True)})
    cases += gemma_chat_cases(hf_gemma)
    with open(os.path.join(HERE, "gemma2_cases.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
