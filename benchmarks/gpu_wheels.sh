#!/usr/bin/env bash
# The wheels gpu_check.sh needs on a GPU machine that cannot reach PyPI and whose
# python3 already holds torch, numpy, scipy, numba, pandas, matplotlib, pytest
# (the workplace's 'cuda' image): the audio libraries mvbook imports, at the
# versions of constraints.txt, for that machine's Python (3.12, manylinux x86-64).
# Run here, then carry .whl/ (a few MiB) with the working tree:
#
#   benchmarks/gpu_wheels.sh            # writes .whl/ (git-ignored)
#   benchmarks/gpu_check.sh             # there: installs .whl/ into /tmp/site and runs
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES="librosa gammatone soundfile soxr audioread pooch platformdirs decorator lazy-loader cffi pycparser"
mkdir -p .whl
for name in $NAMES; do
    pin=$(grep -i -m1 -E "^${name//-/[-_.]}==" constraints.txt) || { echo "gpu_wheels: $name is not in constraints.txt" >&2; exit 1; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$pin" \
    || python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl "$pin"
done
du -sh .whl && ls .whl
