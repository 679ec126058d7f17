#!/usr/bin/env bash
# `make demo`: runs the most complete part of Misalign that exists today on built-in data.
# The full pipeline (train -> generate -> judge -> detect -> report) lands with issues 4-9;
# until then this demo says so plainly and shows what works.
set -euo pipefail
BIN="${1:-.build/release}"
cd "$(dirname "$0")/.."
echo "Misalign demo (foundation stage)"
echo "================================"
echo "What runs today: safetensors I/O, model config decoding, BLAS, precision conversion."
echo "What does not exist yet: tokenizer, forward pass, training, generation, judges, detection, report."
echo
echo "\$ misalign inspect Tests/Fixtures/qwen2-small-bf16-sharded   (a tiny random Qwen2 model, 7 shards)"
"$BIN/misalign" inspect Tests/Fixtures/qwen2-small-bf16-sharded | head -12
echo "  ..."
echo
echo "\$ InspectWeights Tests/Fixtures/qwen2-small   (Examples/InspectWeights: the library embedded in a program)"
"$BIN/InspectWeights" Tests/Fixtures/qwen2-small
echo
echo "\$ misalign-bench gemm --tokens 256   (sgemm on Qwen2.5-0.5B layer shapes)"
"$BIN/misalign-bench" gemm --tokens 256
