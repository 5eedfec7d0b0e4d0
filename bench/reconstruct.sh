#!/usr/bin/env bash
# cryomotion reconstruct vs relion_reconstruct on the same simulated particles.
# Usage: bench/reconstruct.sh [N_PARTICLES=10000] [BOX=128] [THREADS=2]
# Prints wall times, their ratio, and the FSC between the two maps (goal ≥ 0.95 in every shell
# out to 0.8 × Nyquist). Needs RELION 3.1 (apt-get install relion).
set -euo pipefail
n=${1:-10000}
box=${2:-128}
threads=${3:-2}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/cryomotion
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" simulate --map ../shared/data/relion_ref/ref_model_betagal_100.mrc --box "$box" \
    --n-particles "$n" --snr 0.05 --shift-sigma 5 --seed 1 --o "$work/sim" > /dev/null

seconds() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }

ours=$(seconds "$bin" reconstruct "$work/sim/particles.star" --o "$work/ours" --ctf --threads "$threads")
# like for like with relion_reconstruct (no --fsc): plain maps
"$bin" reconstruct "$work/sim/particles.star" --o "$work/plain" --ctf --threads "$threads" --no-wiener > /dev/null
relion=$(cd "$work/sim" && seconds relion_reconstruct --i particles.star --o relion.mrc --ctf)

echo "particles $n, box $box, cryomotion threads $threads"
printf 'cryomotion reconstruct (2 half maps + map, Wiener): %6.1f s\n' "$ours"
printf 'relion_reconstruct --ctf (one map):                 %6.1f s\n' "$relion"
printf 'time ratio relion / cryomotion:                     %6.2f\n' "$(echo "$relion / $ours" | bc -l)"
echo "FSC cryomotion --no-wiener map vs relion_reconstruct map:"
"$bin" fsc "$work/plain/map.mrc" "$work/sim/relion.mrc" | awk -v half=$((box / 2)) '
    NR > 1 && $1 ~ /^[0-9]+$/ { if ($1 <= 0.8 * half && (min == "" || $3 < min)) min = $3 }
    /^resolution/ { print "  " $0 }
    END { printf "  lowest FSC out to 0.8 x Nyquist: %.3f\n", min }'
grep rlnFinalResolution "$work/ours/fsc.star" | awk '{printf "cryomotion half-map resolution (FSC 0.143): %.2f A\n", $2}'
