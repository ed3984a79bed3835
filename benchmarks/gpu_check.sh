#!/usr/bin/env bash
# The GPU check, as one script: install, the device's tests, the step benchmark
# (eager against optimised at widths 1.0 and 0.25, the loader's share, the
# evaluation's share) and a short paper-preset training run on synthetic data.
# Every figure goes to one file, with the date, the commit and the machine.
#
#   benchmarks/gpu_check.sh                          # on a GPU machine: --device cuda
#   benchmarks/gpu_check.sh --device cpu --quick     # here: the same steps, small (a test of the script)
#
# Options: --device cuda|cpu (default cuda), --out FILE (default benchmarks/gpu_check-<device>.txt),
# --quick (width 1/16, one repetition, fewer tests, a smoke-preset run: a few minutes on a CPU).
# Environment: PYTHON (default .venv/bin/python; without a venv but with .whl/ from
# benchmarks/gpu_wheels.sh, the machine's python3 with those wheels; else a venv is
# made from the pinned requirements), MVBOOK_CACHE (feature cache).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda out="" quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        *) echo "gpu_check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
out=${out:-benchmarks/gpu_check-$device.txt}
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ] && [ -d .whl ]; then
    # a GPU machine without PyPI: its python3 holds torch; the rest came as wheels (gpu_wheels.sh)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    PYTHON=python3
fi
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -x "$PYTHON" ] && ! command -v "$PYTHON" > /dev/null; then
    echo "gpu_check: no $PYTHON: making .venv from requirements.txt"
    python3 -m venv .venv
    constraints=(); [ -f constraints.txt ] && constraints=(-c constraints.txt)
    .venv/bin/pip install -q "${constraints[@]}" -r requirements.txt -e .
    PYTHON=.venv/bin/python
fi
if [ "$device" = cuda ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: torch sees no CUDA device')"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MVBOOK_CACHE=${MVBOOK_CACHE:-$tmp/cache} PYTHONUNBUFFERED=1
mkdir -p "$(dirname "$out")"
{
    echo "# gpu_check --device $device$([ $quick = 1 ] && echo ' --quick')"
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (tracked files modified)')"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
    "$PYTHON" -c "import torch; print('torch:  ', torch.__version__, '| CUDA', torch.version.cuda,
          '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
} | tee "$out"

section() { echo; echo "## $1"; } 

if [ $quick = 1 ]; then
    tests=(tests/test_device.py tests/test_dropout.py tests/test_bigru.py)
    bench=(--widths 0.0625 --reps 1 --presets smoke --systems mel,multiview --dataset synthetic)
    preset=smoke epochs=1           # a paper-scale step takes ~8 s on a CPU
else
    tests=(tests/test_device.py tests/test_models.py tests/test_fastpaths.py tests/test_dropout.py tests/test_bigru.py
           tests/test_features.py tests/test_train.py tests/test_fusionnet.py tests/test_golden_runs.py
           tests/test_segments.py)
    bench=(--widths 1.0,0.25 --reps 5 --presets paper,cpu --systems mel,gam,cqt,raw,multiview --dataset synthetic)
    preset=paper epochs=3
fi
[ "$device" = cpu ] && bench+=(--threads 1)      # CPU seconds of one thread: what shared cores inflate least
bench+=(--json "${out%.*}.json")

{
    section "tests on $device (pytest ${tests[*]})"
    "$PYTHON" -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 | tail -n 15
    section "step benchmark (bench_step.py --device $device ${bench[*]})"
    "$PYTHON" benchmarks/bench_step.py --device "$device" "${bench[@]}"
    section "$preset-preset training run on synthetic data ($epochs epoch(s))"
    start=$(date +%s)
    "$PYTHON" -m mvbook train --dataset synthetic --preset "$preset" --system multiview --epochs "$epochs" \
        --device "$device" --out "$tmp/runs" --no-progress
    "$PYTHON" - "$tmp/runs" <<'EOF'
import json, sys
from pathlib import Path
rec = json.loads(next(Path(sys.argv[1]).rglob("fold1-seed0.json")).read_text())
prov, steps = rec["provenance"], rec["curves"]["step"][-1]
print(f"{steps} steps: {prov['train_seconds']} s of training ({prov['train_seconds'] / max(steps, 1):.3f} s/step "
      f"incl. evaluations), {prov['wall_seconds']} s wall, device {prov['device']}, autocast {prov['autocast']}")
EOF
    echo "train wall incl. start-up and features: $(( $(date +%s) - start )) s"
} 2>&1 | tee -a "$out"
echo "gpu_check: figures in $out"
