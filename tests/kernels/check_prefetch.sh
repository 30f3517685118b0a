#!/usr/bin/env bash
# Checks that every SIMD tile loop of q3vl.QuantLinear in the built kernel library still
# asks for its weights ahead (prefetcht0 and prefetcht1, src/kernels/dispatch.h).
#
# Why a test of the machine code: a prefetch cannot change a result, so no result test
# notices when a refactor lets the compiler drop them; one such refactor once emitted no
# prefetch at all and decode fell from 12.5 to 8.1 tok/s on the 4b preset.
#
# Usage: check_prefetch.sh LIBQ3VL_KERNELS.a
set -euo pipefail
lib=${1:?usage: check_prefetch.sh LIBQ3VL_KERNELS.a}
[[ -r $lib ]] || { echo "check_prefetch: cannot read $lib" >&2; exit 2; }
# objdump prints each archive member's functions as "<symbol>:" lines; count, per
# tile_block_rows instantiation of each SIMD member, the two prefetch levels.
objdump -d --no-show-raw-insn "$lib" | awk '
  /file format/ { member = $1; sub(/:$/, "", member) }
  /^[0-9a-f]+ <.*>:$/ {
    fn = ""
    if ((member ~ /gemm_avx512vnni|gemm_avx2/) && $0 ~ /tile_block_rows/) { fn = member " " $2; seen[fn] = 1; count[member]++ }
  }
  fn != "" && /prefetcht0/ { near[fn]++ }
  fn != "" && /prefetcht1/ { far[fn]++ }
  END {
    bad = 0
    split("gemm_avx512vnni.cpp.o gemm_avx2.cpp.o", members, " ")
    for (i in members) {
      if (!count[members[i]]) { printf "%s: no tile_block_rows function found\n", members[i]; bad = 1 }
    }
    for (fn in seen) {
      if (!near[fn] || !far[fn]) { printf "%s: %d prefetcht0, %d prefetcht1 (want both)\n", fn, near[fn], far[fn]; bad = 1 }
    }
    if (!bad) { n = 0; for (fn in seen) n++; printf "%d tile loops, each with both prefetch levels\n", n }
    exit bad
  }'
