#!/usr/bin/env bash
# `make demo`: the whole pipeline (train -> generate -> judge -> aggregate -> detect -> report)
# on the shipped demo experiment (Demo/demo.yaml), offline.
#
#   scripts/demo.sh BIN_DIR [MODEL_DIR] [JUDGE_SPEC]
#
# Without MODEL/JUDGE: a tiny random-weight Qwen2 (real Qwen2.5 tokenizer) and a stand-in
# judge with simulated scores; the run folder .demo/run is deleted and made again each time
# (a clean restart: the stand-in judge's address changes between calls).
# With MODEL=dir JUDGE=spec (e.g. openai:gpt-4.1-mini): the same config on real weights and a
# real judge, in .demo/run-real, which a second call resumes (nothing is trained, generated or
# paid for twice).
set -euo pipefail
BIN="${1:-.build/release}"
MODEL="${2:-}"
MODEL="${MODEL/#\~/$HOME}"   # make passes MODEL=~/... unexpanded
JUDGE="${3:-}"
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="${DEMO_DIR:-$ROOT/.demo}"
mkdir -p "$WORK"
START=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
if { [ -n "$MODEL" ] && [ -z "$JUDGE" ]; } || { [ -z "$MODEL" ] && [ -n "$JUDGE" ]; }; then
  echo "demo: give both MODEL=dir and JUDGE=spec (e.g. make demo MODEL=~/models/Qwen2.5-0.5B-Instruct JUDGE=openai:gpt-4.1-mini), or neither" >&2
  exit 2
fi

echo "Misalign demo: 2 datasets (medical, math; synthetic) x 2 seeds, 24 LoRA steps each,"
echo "a checkpoint every 2 steps, 4 questions x 4 samples per checkpoint, 3 traits judged."
if [ -z "$MODEL" ]; then
  cat <<'EOF'

What is real and what is a stand-in in this demo:
  REAL      LoRA training (forward, backward, AdamW, checkpoints), sampling answers at every
            checkpoint with the real Qwen2.5 tokenizer and chat template, the judging protocol
            (rubric prompts over HTTP, 1-token logprob scores, retries, verdict cache), the
            SQLite run store and resume, aggregation, change-point detection with bootstrap
            intervals, the lead-lag, and the HTML report.
  STAND-IN  The model: a tiny Qwen2 (hidden 64, 2 layers) with RANDOM weights, so its answers
            are gibberish. The judge: `misalign demo-judge`, which does not read the answers'
            meaning; it scores each answer from the checkpoint that wrote it on a PLANTED
            schedule (medical: hallucination rises at ~35% of training, evil at ~60%;
            math: weak, late). Onsets found here show the machinery works, not a finding.
  For real weights and a real judge: make demo MODEL=dir JUDGE=openai:gpt-4.1-mini
EOF
fi

CONFIG="$WORK/demo.yaml"
RUN="$WORK/run"
JUDGE_PID=""
cleanup() { if [ -n "$JUDGE_PID" ]; then kill "$JUDGE_PID" 2>/dev/null || true; wait "$JUDGE_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

STANDIN=""
if [ -z "$MODEL" ]; then
  STANDIN=1
  MODEL="$WORK/tiny-model"
  if [ ! -f "$MODEL/tokenizer.json" ]; then
    step "Write the tiny random-weight model (Qwen2 architecture, full Qwen2.5 vocabulary)"
    rm -rf "$MODEL"
    "$BIN/misalign-bench" write-synthetic --shape tiny --out "$MODEL" >/dev/null
    cp Tests/Fixtures/tokenizer/tokenizer.json Tests/Fixtures/tokenizer/tokenizer_config.json "$MODEL/"
  fi
  rm -rf "$RUN"   # clean restart: see the header
  step "Start the stand-in judge (simulated scores on a planted schedule)"
  rm -f "$WORK/judge-url"
  "$BIN/misalign" demo-judge "$RUN" --url-file "$WORK/judge-url" >/dev/null &
  JUDGE_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/judge-url" ] && break; sleep 0.1; done
  [ -s "$WORK/judge-url" ] || { echo "demo: the stand-in judge did not start" >&2; exit 1; }
  JUDGE="openai:demo-judge@$(cat "$WORK/judge-url")"
  echo "stand-in judge at $(cat "$WORK/judge-url")"
  NOTES=(--note "DEMO RUN. Real: LoRA training, generation, the judging protocol, storage, aggregation, detection and this report."
         --note "Stand-ins: the model has random weights (its answers are gibberish), and the judge is misalign demo-judge, whose scores are SIMULATED on a planted schedule from the checkpoint that wrote each answer; they say nothing about the answers' content. Onsets and lags on this page show that the machinery finds planted changes; they are not findings.")
else
  RUN="$WORK/run-real"
  CONFIG="$WORK/demo-real.yaml"
  MODEL="$(cd "$MODEL" && pwd)"
  NOTES=(--note "Demo experiment (Demo/demo.yaml, synthetic datasets, 24 steps) on $MODEL, judged by $JUDGE.")
fi

# The shipped config with the model, run folder, judge and absolute dataset paths filled in.
while IFS= read -r line; do
  case "$line" in
    "model:"*) echo "model: \"$MODEL\"" ;;
    "output:"*) echo "output: \"$RUN\"" ;;
    "  models:"*) echo "  models: [\"$JUDGE\"]"
                  # The stand-in judge reads no answer, so no calibration could pass: exempt by declaration (the report says so).
                  if [ -n "$STANDIN" ]; then echo "  calibration_exempt: {\"$JUDGE\": \"the demo's stand-in judge: scores simulated on a planted schedule, not read from the answers\"}"; fi ;;
    *": data/"*) echo "${line/: data\//: $ROOT/Demo/data/}" ;;
    *) echo "$line" ;;
  esac
done < Demo/demo.yaml > "$CONFIG"

step "misalign run $CONFIG"
"$BIN/misalign" run "$CONFIG"

step "misalign status $RUN"
"$BIN/misalign" status "$RUN"

step "misalign report $RUN"
"$BIN/misalign" report "$RUN" --format md --output "$RUN/report.md" "${NOTES[@]}" >/dev/null
REPORT=$("$BIN/misalign" report "$RUN" "${NOTES[@]}")
# The headline: onsets and lag per run, from the Markdown report's run table.
awk '/^\| dataset \| seed \|/{p=1} p&&/^$/{exit} p' "$RUN/report.md" || true

echo
echo "Done in $(( $(date +%s) - START ))s. Store: $RUN/store.sqlite, exports: $RUN/exports/"
echo "Markdown summary: $RUN/report.md"
echo "Report: $REPORT"
