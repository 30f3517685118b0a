#!/usr/bin/env bash
# Checks that every SIMD tile loop of q3vl.QuantLinear in the built kernel library still
# asks for its weights ahead (prefetcht0 and prefetcht1, src/kernels/dispatch.h).
#
# Why a test of the machine code: a prefetch cannot change a result, so no result test
# notices when a refactor lets the compiler drop them; one such refactor once emitted no
# prefetch at all and decode fell from 12.5 to 8.1 tok/s on the 4b preset.
#
# A tile loop is found by what it does, not by its name (the compiler may inline it into
# a caller): every function of the AVX-512 and AVX2 GEMM objects that multiplies int8
# codes (vpdpbusd, vpmaddubsw) must hold both prefetch levels.
#
# Usage: check_prefetch.sh LIBQ3VL_KERNELS.a
set -euo pipefail
lib=${1:?usage: check_prefetch.sh LIBQ3VL_KERNELS.a}
[[ -r $lib ]] || { echo "check_prefetch: cannot read $lib" >&2; exit 2; }
objdump -d --no-show-raw-insn "$lib" | awk '
  /file format/ { member = $1; sub(/:$/, "", member) }
  /^[0-9a-f]+ <.*>:$/ { fn = (member ~ /gemm_avx512vnni|gemm_avx2/) ? member " " $2 : "" }
  fn != "" && /vpdpbusd|vpmaddubsw/ { if (!multiplies[fn]++) loops[member]++ }
  fn != "" && /prefetcht0/ { near[fn]++ }
  fn != "" && /prefetcht1/ { far[fn]++ }
  END {
    bad = 0
    split("gemm_avx512vnni.cpp.o gemm_avx2.cpp.o", members, " ")
    for (i in members) {
      if (!loops[members[i]]) { printf "%s: no function multiplies int8 codes\n", members[i]; bad = 1 }
    }
    n = 0
    for (fn in multiplies) {
      n++
      if (!near[fn] || !far[fn]) { printf "%s: %d prefetcht0, %d prefetcht1 (want both)\n", fn, near[fn], far[fn]; bad = 1 }
    }
    if (!bad) printf "%d tile loops, each with both prefetch levels\n", n
    exit bad
  }'
