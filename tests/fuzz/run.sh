#!/usr/bin/env bash
# Runs q3vl's libFuzzer targets (built in the instrumented tree, build/asan by default).
#
#   tests/fuzz/run.sh --time 3600 image          # a long run of one target
#   tests/fuzz/run.sh --runs 1000000             # every target, 1M executions each
#   tests/fuzz/run.sh --time 10 --seed 1 --work /tmp/w   # CTest's short pass (tests/CMakeLists.txt)
#
# Each run reads its committed seed corpus (corpus/<target>/) and every saved crash
# input (regressions/<target>/) first, so a regression fails before fuzzing starts.
# New coverage goes to the work directory (<work>/<target>/corpus), never into the
# committed corpus; crash inputs land in <work>/<target>/ as crash-*, oom-*, leak-*,
# timeout-*. A finding exits non-zero. Resource bombs are findings: one allocation
# above --malloc-mb or a resident size above 2048 MB fails the run.
# The last line per target is a table row: target, executions, edges, features.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$ROOT/build/asan"
WORK=""
TIME=""
RUNS=""
SEED=""
MALLOC_MB=1024
JOBS=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --malloc-mb) MALLOC_MB="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
WORK="${WORK:-$BUILD/fuzz-work}"
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$HERE"/fuzz_*.cpp; do n="$(basename "$f" .cpp)"; targets+=("${n#fuzz_}"); done
fi
[ -n "$TIME" ] || [ -n "$RUNS" ] || TIME=60

# Dictionaries: the JSON grammar for the JSON readers, chunk and marker names for images.
dict_for() {
  case "$1" in
    safetensors|model_config|side_configs|manifest|messages|kl_reference) echo "$HERE/dict/json.dict" ;;
    image) echo "$HERE/dict/image.dict" ;;
    video) echo "$HERE/dict/video.dict" ;;
    chat_request) echo "$HERE/dict/chat_request.dict" ;;
    quant_recipe) echo "$HERE/dict/quant_recipe.dict" ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  bin="$BUILD/tests/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then echo "run.sh: $bin not built (cmake --build $BUILD --target fuzz_targets)" >&2; status=1; continue; fi
  out="$WORK/$t"
  rm -rf "$out/corpus"; mkdir -p "$out/corpus"
  args=(-rss_limit_mb=2048 -malloc_limit_mb="$MALLOC_MB" -timeout=25 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$out/" -jobs="$JOBS" -workers="$JOBS")
  [ "$JOBS" -gt 1 ] || args=("${args[@]:0:6}")
  [ -n "$TIME" ] && args+=(-max_total_time="$TIME")
  [ -n "$RUNS" ] && args+=(-runs="$RUNS")
  [ -n "$SEED" ] && args+=(-seed="$SEED")
  dict="$(dict_for "$t")"
  [ -n "$dict" ] && args+=(-dict="$dict")
  dirs=("$out/corpus" "$HERE/corpus/$t")
  [ -d "$HERE/regressions/$t" ] && dirs+=("$HERE/regressions/$t")
  log="$out/log.txt"
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
  ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')"
  if [ $rc -ne 0 ]; then
    status=1
    echo "---- $t: FINDING (exit $rc); log $log" >&2
    grep -E 'ERROR|SUMMARY|runtime error|fuzz property|Test unit written|exceeds|terminate|what\(\)' "$log" | head -20 >&2
    tail -5 "$log" >&2
  fi
  printf 'fuzz %-16s execs %-10s edges %-7s features %-7s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "$([ $rc -eq 0 ] && echo ok || echo FINDING)"
done
exit $status
