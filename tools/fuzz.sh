#!/usr/bin/env bash
# Builds the libFuzzer target for the loader + shape inference + cost model (tests/fuzz/fuzz_load.c)
# with clang + ASan + UBSan into build/fuzz/, seeds a corpus, fuzzes for SECONDS, fails on any crash.
# Usage: tools/fuzz.sh SECONDS [extra libFuzzer flags]   (make fuzz FUZZ_SECONDS=N)
#        tools/fuzz.sh --build-only | --replay FILE...
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
GEN=$BUILD/gen
CC=${FUZZ_CC:-clang}
[ $# -ge 1 ] || { echo "usage: tools/fuzz.sh SECONDS [libFuzzer flags] | --build-only | --replay FILE..." >&2; exit 2; }
mode=$1; shift

[ -f "$GEN/onnx.pb-c.h" ] || make --no-print-directory "$GEN/onnx.pb-c.h" BUILD="$BUILD"

# Only the parts the untrusted-input path runs through: the runtime and kernels are not linked.
SRC="$(ls src/util/*.c src/graph/*.c src/onnx/onnx_load.c src/ops/*.c src/cost/*.c) $GEN/onnx.pb-c.c"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -O1 -g $SAN -Iinclude -Isrc -I$GEN -Wall -Wextra -Wno-unused-parameter"
mkdir -p "$OUT/obj"
objs=""
for s in $SRC; do
  o="$OUT/obj/$(echo "$s" | tr / _).o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o" -print -quit)" ]; then
    $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$s" -o "$o"
  fi
  objs="$objs $o"
done
$CC $CFLAGS -fsanitize=fuzzer tests/fuzz/fuzz_load.c $objs -lprotobuf-c -lm -o "$OUT/fuzz_load"
[ "$mode" = --build-only ] && { echo "fuzz: built $OUT/fuzz_load"; exit 0; }
if [ "$mode" = --replay ]; then
  exec "$OUT/fuzz_load" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "$@"
fi

SECONDS_TO_RUN=$mode
case "$SECONDS_TO_RUN" in ''|*[!0-9]*) echo "fuzz: SECONDS must be a number" >&2; exit 2 ;; esac

# Seeds: per-op models, the hand-made test models, a real CNN if it was exported (as a skeleton:
# its 5 MB of weights would make every mutation slow and exceed -max_len), past regressions.
SEEDS=$OUT/seeds
rm -rf "$SEEDS"; mkdir -p "$SEEDS" "$OUT/corpus" "$OUT/crashes"
real_models=""
[ -f "$BUILD/models/squeezenet1_1.onnx" ] && real_models="$BUILD/models/squeezenet1_1.onnx"
python3 tests/fuzz/make_seeds.py "$SEEDS" "$OUT/onnx.dict" $real_models
[ -f "$BUILD/testmodels/tiny_cnn.onnx" ] || python3 tools/make_test_models.py "$BUILD/testmodels" >/dev/null
cp "$BUILD"/testmodels/*.onnx "$SEEDS/"
cp tests/fuzz/regressions/* "$SEEDS/" 2>/dev/null || true

rm -f "$OUT"/crashes/*
log=$OUT/fuzz.log
echo "fuzz: running $OUT/fuzz_load for ${SECONDS_TO_RUN}s (log: $log)"
start=$(date +%s)
set +e
"$OUT/fuzz_load" "$OUT/corpus" "$SEEDS" -dict="$OUT/onnx.dict" -max_total_time="$SECONDS_TO_RUN" \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=${FUZZ_MAX_LEN:-65536} -print_final_stats=1 \
  -artifact_prefix="$OUT/crashes/" "$@" >"$log" 2>&1
rc=$?
set -e
end=$(date +%s)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "fuzz: $((end - start))s, ${execs:-?} executions, exit code $rc"
crashes=$(ls "$OUT"/crashes/ 2>/dev/null | wc -l)
if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
  echo "fuzz: FAILED — crash files in $OUT/crashes/ (last lines of $log):" >&2
  grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$log" | head -20 >&2
  exit 1
fi
echo "fuzz: no crash"
