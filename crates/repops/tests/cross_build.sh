#!/usr/bin/env bash
# Builds examples/repro_digest three ways and checks that every build prints the same digest:
#   release   opt-level 3, baseline x86-64 target (the SIMD path is picked at run time)
#   native    opt-level 3 with RUSTFLAGS="-C target-cpu=native" (lets LLVM use FMA, AVX2 ...
#             everywhere; Rust never contracts a * b + c, so no result may change)
#   debug     opt-level 0 for poi-repops (the workspace builds dependencies at opt-level 2)
# Each build also runs every supported SIMD path on 1 and 2 threads and fails if those differ.
#
# Usage: crates/repops/tests/cross_build.sh   (from anywhere; CARGO_TARGET_DIR is the base of
# the three target directories, default ./target; the native build gets its own directory
# because RUSTFLAGS changes every artifact).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
base="${CARGO_TARGET_DIR:-$root/target}"

run() {
    local dir="$1"
    shift
    CARGO_TARGET_DIR="$dir" nice -n 19 cargo run -q --offline -p poi-repops --example repro_digest "$@"
}

declare -A digests
echo "== release (opt-level 3)"
out="$(run "$base" --release)"
echo "$out"
digests[release]="$(echo "$out" | awk '/^digest /{print $2}')"

echo "== native (opt-level 3, target-cpu=native)"
out="$(RUSTFLAGS="-C target-cpu=native" run "$base-native" --release)"
echo "$out"
digests[native]="$(echo "$out" | awk '/^digest /{print $2}')"

echo "== debug (opt-level 0)"
out="$(run "$base")"
echo "$out"
digests[debug]="$(echo "$out" | awk '/^digest /{print $2}')"

status=0
for build in native debug; do
    if [[ -z "${digests[$build]}" || "${digests[$build]}" != "${digests[release]}" ]]; then
        echo "MISMATCH: $build ${digests[$build]:-<none>} vs release ${digests[release]}"
        status=1
    fi
done
if [[ $status -eq 0 ]]; then
    echo "OK: release, native and debug builds agree: ${digests[release]}"
fi
exit $status
