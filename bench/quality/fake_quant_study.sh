#!/bin/sh
# The formats study: for each NAME=RECIPE, build a --fake-quant FP32 package of CKPT
# (text only, --all-logits), score it with eval-kl against saved reference logits, delete it.
# One package at a time (a 4B FP32 package is 16 GB). Outputs OUT/NAME.{build.log,json,err}.
#
#   bench/quality/fake_quant_study.sh Q3VL CKPT REF.kl OUT NAME=RECIPE...
#   e.g. bench/quality/fake_quant_study.sh build/q3vl /work/peers/ckpt-4b ref-4b-c8.kl out \
#            int4='*=int4' nl4='*=nl4' q4km=q4km
set -eu
q3vl=$1 ckpt=$2 ref=$3 out=$4
shift 4
here=$(dirname "$0")
mkdir -p "$out"
for spec in "$@"; do
  name=${spec%%=*}
  recipe=${spec#*=}
  pkg="$out/pkg-$name"
  echo "== $name: $recipe ($(date -u +%H:%M:%S))"
  /usr/bin/time -v "$q3vl" build --model "$ckpt" --out "$pkg" --precision fp32 --fake-quant "$recipe" \
      --no-vision --all-logits --force > "$out/$name.build.log" 2>&1
  grep -E "byte/weight|Elapsed|Maximum resident" "$out/$name.build.log"
  "$q3vl" eval-kl --model "$pkg" --reference-logits "$ref" --text "$here/text.txt" --chunks 8 \
      --image none --output json > "$out/$name.json" 2> "$out/$name.err" || { rm -rf "$pkg"; exit 1; }
  rm -rf "$pkg"
  grep -E '"mean_kl"|"top1_agreement"' "$out/$name.json" | head -2
done
