#!/usr/bin/env python3
"""Single-sample decode tokens/s of llama.cpp (llama-cpp-python) on a Qwen2 folder, for
comparison with `misalign-bench forward --no-torch --only decode1 --model DIR`.

    pip install llama-cpp-python gguf sentencepiece   # builds llama.cpp from source
    pip download llama-cpp-python --no-deps --no-binary :all: && tar xzf llama_cpp_python-*.tar.gz
    misalign-bench write-synthetic --shape 0.5b --dtype bf16 --out /tmp/q05
    cp Tests/Fixtures/tokenizer/tokenizer*.json /tmp/q05/
    python3 Benchmarks/llama_cpp_decode.py /tmp/q05 \
        --convert llama_cpp_python-*/vendor/llama.cpp/convert_hf_to_gguf.py

The folder is converted to GGUF with llama.cpp's own `convert_hf_to_gguf.py` (vendored in the
llama-cpp-python sdist, `vendor/llama.cpp/`, beside its `conversion/` and `gguf-py/`; its Qwen2
vocabulary step imports `sentencepiece` before falling back to tokenizer.json) once per type (bf16, q8_0 by default); then each
GGUF file is loaded with `n_threads` threads, a 32-token prompt is evaluated, and `--steps`
single-token steps are timed one by one (`Llama.eval` of one token: one forward pass and its
logits, no sampling, as in our decode measurement). Prints the median step time and tokens/s.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def convert(folder, script, outtype):
    out = os.path.join(folder, f"model-{outtype}.gguf")
    if not os.path.exists(out):
        subprocess.run([sys.executable, script, folder, "--outtype", outtype, "--outfile", out], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def measure(path, threads, steps, prompt_len=32):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=prompt_len + steps + 8,
                n_batch=prompt_len, logits_all=False, verbose=False)
    prompt = [(i * 7919) % 150000 + 100 for i in range(prompt_len)]
    llm.eval(prompt)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        llm.eval([(i * 104729) % 150000 + 100])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return med, 1 / med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--convert", required=True, help="llama.cpp's convert_hf_to_gguf.py")
    ap.add_argument("--types", default="bf16,q8_0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=32)
    a = ap.parse_args()
    for t in a.types.split(","):
        path = convert(a.folder, a.convert, t)
        med, rate = measure(path, a.threads, a.steps)
        size = os.path.getsize(path) / 1e9
        print(f"llama.cpp {t:5s} ({size:.2f} GB): median step {med * 1000:.1f} ms, {rate:.1f} tokens/s, {a.threads} threads")


if __name__ == "__main__":
    main()
