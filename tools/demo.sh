#!/usr/bin/env bash
# flopcut demo (`make demo`): profile the embedded Fashion-MNIST CNN, prune it, evaluate dense and
# pruned models on the 10,000 test images, benchmark them, and print one summary table.
#
# Every stage is a function. A stage whose flopcut command does not exist yet (its `--help` fails)
# or lacks the option it needs is skipped with a one-line note; its columns then read "-". No number
# in the table is ever made up.
#
# Environment: FLOPCUT (binary, default build/flopcut), FASHION_MNIST (dataset directory, default
# /usr/share/datasets/fashion-mnist), DEMO_OUT (scratch directory, default build/demo),
# DEMO_THREADS (threads for the latency benchmark, default 1; eval uses every core),
# DEMO_BENCH_ROUNDS (interleaved benchmark rounds, best kept, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${FLOPCUT:-build/flopcut}
MODEL=models/fashion_cnn.onnx
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
OUT=${DEMO_OUT:-build/demo}
THREADS=${DEMO_THREADS:-1}
BENCH_ROUNDS=${DEMO_BENCH_ROUNDS:-3}
SHAPE1=(--input-shape input=1x1x28x28)
TEST_IMAGES=$DATA/t10k-images-idx3-ubyte.gz
TEST_LABELS=$DATA/t10k-labels-idx1-ubyte.gz
CALIB_IMAGES=$DATA/train-images-idx3-ubyte.gz # calibrate on training images, never on the test set
CALIB_N=512

# One row per model variant; the arrays are indexed by row number.
ROW_NAME=() ROW_SPARSITY=() ROW_FILE=() ROW_MACS=() ROW_TOP1=() ROW_MS=()
NOTES=()

note() {
  echo "demo: $*"
  NOTES+=("$*")
}

# has_command CMD: the flopcut subcommand exists (its --help exits 0).
has_command() { "$BIN" "$1" --help >/dev/null 2>&1; }
# has_option CMD WORD: the subcommand's help mentions WORD (an option or a method name).
has_option() { "$BIN" "$1" --help 2>/dev/null | grep -q -- "$2"; }

# json_get FILE KEY.KEY...: prints one field of a JSON document (python3 is a demo dependency).
json_get() {
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
}

add_row() { # NAME SPARSITY FILE
  ROW_NAME+=("$1") ROW_SPARSITY+=("$2") ROW_FILE+=("$3") ROW_MACS+=("-") ROW_TOP1+=("-") ROW_MS+=("-")
}

# MACs kept = nonzero MACs / dense MACs, as flopcut profile counts them.
macs_kept() {
  local i=$1 json=$OUT/profile_$1.json
  "$BIN" profile "${ROW_FILE[$i]}" "${SHAPE1[@]}" --format json >"$json"
  local nz total
  nz=$(json_get "$json" totals.nonzero_macs)
  total=$(json_get "$json" totals.macs)
  ROW_MACS[$i]=$(python3 -c "print(f'{100 * $nz / $total:.1f}%')")
}

stage_profile() {
  echo "== profile: $MODEL"
  "$BIN" profile "$MODEL" "${SHAPE1[@]}" --top 10
  add_row "dense" "0%" "$MODEL"
  macs_kept 0
}

# prune_variant NAME SPARSITY OUTFILE ARGS...: one pruned model and its row; 1 if prune failed.
prune_variant() {
  local name=$1 sparsity=$2 file=$3
  shift 3
  echo "== prune: $name at $sparsity"
  if ! "$BIN" prune "$MODEL" "${SHAPE1[@]}" -o "$file" --sparsity "$sparsity" "$@"; then
    note "prune $name at $sparsity failed; its row is left out"
    return 1
  fi
  add_row "$name" "$(python3 -c "print(f'{100 * $sparsity:g}%')")" "$file"
  macs_kept $((${#ROW_NAME[@]} - 1))
}

stage_prune() {
  if ! has_command prune; then
    note "skipped pruning: 'flopcut prune' is not built yet"
    return
  fi
  prune_variant "Global MP" 0.9 "$OUT/fashion_gmp90.onnx" --method global || true
  # Global MP at 95 % is the yardstick the calibrated methods must beat.
  prune_variant "Global MP" 0.95 "$OUT/fashion_gmp95.onnx" --method global || true
  local found=0 m
  for m in sparsegpt wanda; do
    if has_option prune "$m" && has_option prune --calib-images; then
      found=1
      prune_variant "$m" 0.95 "$OUT/fashion_${m}95.onnx" --method "$m" \
        --calib-images "$CALIB_IMAGES" --calib-n "$CALIB_N" || true
    fi
  done
  [ $found = 1 ] || note "skipped calibrated pruning: 'flopcut prune' has no --method wanda|sparsegpt yet"
}

stage_eval() {
  if ! has_command eval; then
    note "skipped accuracy: 'flopcut eval' is not built yet"
    return
  fi
  if [ ! -r "$TEST_IMAGES" ] || [ ! -r "$TEST_LABELS" ]; then
    note "skipped accuracy: $DATA has no Fashion-MNIST test set (apt-get install dataset-fashion-mnist)"
    return
  fi
  local i json
  for i in "${!ROW_NAME[@]}"; do
    echo "== eval: ${ROW_NAME[$i]} ${ROW_SPARSITY[$i]} on $(basename "$TEST_IMAGES")"
    json=$OUT/eval_$i.json
    if "$BIN" eval "${ROW_FILE[$i]}" --images "$TEST_IMAGES" --labels "$TEST_LABELS" \
      --batch 100 --format json >"$json"; then
      ROW_TOP1[$i]=$(python3 -c "print(f'{100 * $(json_get "$json" top1):.2f}%')")
    else
      note "eval of ${ROW_FILE[$i]} failed"
    fi
  done
}

# Latency: each model's median over 300 batch-1 runs, in interleaved rounds (dense, pruned, ...,
# dense, pruned, ...); a row keeps its best round, so a burst of load elsewhere on the machine
# does not land on one model only.
stage_bench() {
  if ! has_command bench; then
    note "skipped latency: 'flopcut bench' is not built yet"
    return
  fi
  local i json round ms
  for round in $(seq "$BENCH_ROUNDS"); do
    for i in "${!ROW_NAME[@]}"; do
      echo "== bench: ${ROW_NAME[$i]} ${ROW_SPARSITY[$i]} (batch 1, $THREADS thread(s), round $round of $BENCH_ROUNDS)"
      json=$OUT/bench_$i.json
      if "$BIN" bench "${ROW_FILE[$i]}" "${SHAPE1[@]}" --threads "$THREADS" --iters 300 --warmup 30 \
        --format json >"$json"; then
        ms=$(json_get "$json" median_ms)
        if [ "${ROW_MS[$i]}" = - ] || python3 -c "import sys; sys.exit(not $ms < ${ROW_MS[$i]})"; then
          ROW_MS[$i]=$ms
        fi
      else
        note "bench of ${ROW_FILE[$i]} failed"
      fi
    done
  done
}

# One line naming the calibrated method that kept the most accuracy at 95 %, against Global MP.
best_calibrated() {
  local i best=-1 gmp=-1
  for i in "${!ROW_NAME[@]}"; do
    [ "${ROW_TOP1[$i]}" != - ] && [ "${ROW_SPARSITY[$i]}" = 95% ] || continue
    if [ "${ROW_NAME[$i]}" = "Global MP" ]; then
      gmp=$i
    elif [ $best -lt 0 ] || python3 -c "import sys; sys.exit(not ${ROW_TOP1[$i]%\%} > ${ROW_TOP1[$best]%\%})"; then
      best=$i
    fi
  done
  [ $best -ge 0 ] || return 0
  printf '\nbest calibrated method at 95%%: %s, test top-1 %s' "${ROW_NAME[$best]}" "${ROW_TOP1[$best]}"
  [ $gmp -ge 0 ] && printf ' (Global MP at 95%%: %s)' "${ROW_TOP1[$gmp]}"
  printf '\n'
}

stage_summary() {
  echo
  echo "== summary: $MODEL, Fashion-MNIST test set (10,000 images), batch-1 latency at $THREADS thread(s)"
  echo "   (latency: median of 300 runs, best of $BENCH_ROUNDS interleaved rounds)"
  printf '%-12s %9s %10s %11s %12s %9s\n' method sparsity "MACs kept" "test top-1" "latency ms" speed-up
  local i speedup latency dense_ms=${ROW_MS[0]:--}
  for i in "${!ROW_NAME[@]}"; do
    latency=- speedup=-
    if [ "${ROW_MS[$i]}" != - ]; then
      latency=$(python3 -c "print(f'{${ROW_MS[$i]}:.3f}')")
      [ "$dense_ms" != - ] && speedup=$(python3 -c "print(f'{$dense_ms / ${ROW_MS[$i]}:.2f}x')")
    fi
    printf '%-12s %9s %10s %11s %12s %9s\n' "${ROW_NAME[$i]}" "${ROW_SPARSITY[$i]}" "${ROW_MACS[$i]}" \
      "${ROW_TOP1[$i]}" "$latency" "$speedup"
  done
  best_calibrated
  if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    for i in "${!NOTES[@]}"; do echo "note: ${NOTES[$i]}"; done
  fi
}

main() {
  if [ ! -x "$BIN" ]; then
    echo "demo: $BIN is missing; run 'make' first" >&2
    exit 1
  fi
  mkdir -p "$OUT"
  stage_profile
  stage_prune
  stage_eval
  stage_bench
  stage_summary
}

main "$@"
