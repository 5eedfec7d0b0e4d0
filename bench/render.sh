#!/usr/bin/env bash
# cryomotion's renderer + loss against DynaMight's image formation in PyTorch on CPU, same threads.
# Usage: bench/render.sh [THREADS=2]. Creates bench/.venv with torch from PyPI on first use.
set -euo pipefail
threads=${1:-2}
cd "$(dirname "$0")/.."
source bench/venv.sh
ours=$(RAYON_NUM_THREADS="$threads" cargo bench --quiet --bench render 2>/dev/null)
theirs=$(bench/.venv/bin/python bench/pytorch_render.py "$threads")
echo "== cryomotion"; echo "$ours"
echo "== PyTorch (DynaMight's image formation)"; echo "$theirs"
echo "== speed-up (cryomotion particles/s ÷ PyTorch particles/s)"
paste <(echo "$ours" | awk '/^ +[0-9]+ +[0-9]+ +[0-9.]+ s/ {print $1, $2, $5}') \
      <(echo "$theirs" | awk '/^ +[0-9]+ +[0-9]+ +[0-9.]+ s/ {print $5}') |
    awk '{printf "  box %3d, %6d Gaussians: %.1fx\n", $1, $2, $3 / $4}'
