#!/usr/bin/env bash
# cryomotion's decoder and encoder against the same computation in PyTorch on CPU, same threads.
# Usage: bench/networks.sh [THREADS=2]. Creates bench/.venv with torch from PyPI on first use.
set -euo pipefail
threads=${1:-2}
cd "$(dirname "$0")/.."
source bench/venv.sh
ours=$(RAYON_NUM_THREADS="$threads" cargo bench --quiet --bench networks 2>/dev/null)
theirs=$(bench/.venv/bin/python bench/pytorch_baseline.py "$threads")
echo "== cryomotion"; echo "$ours"
echo "== PyTorch (DynaMight's modules)"; echo "$theirs"
echo "== speed-up (cryomotion particles/s ÷ PyTorch particles/s)"
paste <(echo "$ours" | awk '/^ +[0-9]+ +[0-9.]+ s/ {print $1, $4}') \
      <(echo "$theirs" | awk '/^ +[0-9]+ +[0-9.]+ s/ {print $4}') |
    awk '{printf "  decoder, %6d Gaussians: %.1fx\n", $1, $2 / $3}'
paste <(echo "$ours" | awk '/^encoder/ {print $3, $(NF-3)}') <(echo "$theirs" | awk '/^encoder/ {print $(NF-1)}') |
    awk '{sub(":", "", $1); printf "  encoder, box %s: %.1fx\n", $1, $2 / $3}'
