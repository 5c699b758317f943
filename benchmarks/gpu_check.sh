#!/usr/bin/env bash
# The GPU device check on a fresh GPU machine (docs/gpu.md), from any directory:
#
#   benchmarks/gpu_check.sh [options of python -m seiscore.bench gpu, e.g. --only tlsm,pipeline]
#
# 1. make setup (.venv from constraints.txt); 2. dask-cuda beside it (no release resolves against the
# constraints, so without its dask pins); 3. the check under a 9-minute timeout (its own budget: 8 minutes;
# the report is rewritten after every section, so a stop keeps the finished ones); 4. where the report is.
# Report name: GPU_CHECK_NAME=gpu_rerun (not --name).
# Offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels benchmarks/gpu_check.sh
# CUDA 12 driver: CUDA_BINDINGS="cuda-bindings>=12.9,<13" benchmarks/gpu_check.sh
# An environment prepared otherwise (no make setup): SEIS_PYTHON=/path/to/python benchmarks/gpu_check.sh
# (the check runs as python -m flows.bench_gpu, the same main as python -m seiscore.bench gpu, so it needs no
# installed entry points, only the packages importable).
set -u
cd "$(dirname "$0")/.." || exit 1
NAME=${GPU_CHECK_NAME:-gpu}
PY=${SEIS_PYTHON:-.venv/bin/python}

if [ -z "${SEIS_PYTHON:-}" ]; then
    make setup || { echo "gpu_check: make setup failed" >&2; exit 1; }
fi
if ! "$PY" -c "import dask_cuda" 2>/dev/null; then
    "$PY" -m pip install --quiet -c constraints.txt "nvidia-ml-py>=12" "cuda-core>=0.5.1,<2" \
        "${CUDA_BINDINGS:-cuda-bindings>=13,<14}" \
        && "$PY" -m pip install --quiet --no-deps "dask-cuda==26.10.*" \
        || echo "gpu_check: dask-cuda not installed; the pipeline's GPU run uses a 1-worker LocalCluster with GPU=1"
fi
"$PY" -c "import sys, torch; ok = torch.cuda.is_available(); print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, GPU seen: {ok}'); sys.exit(0 if ok else 3)" \
    || echo "gpu_check: WARNING: torch sees no CUDA device; the check will only write its 'no GPU' skeleton" >&2
timeout --signal=TERM --kill-after=30 9m "$PY" -m flows.bench_gpu --budget-minutes 8 --name "$NAME" "$@"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check: stopped by the 9-minute timeout; the report holds the finished sections"
results=${SEIS_BENCH_RESULTS:-benchmarks/results}
case $results in /*) ;; *) results=$(pwd)/$results ;; esac
echo "report: $results/$NAME.md and $NAME.json (exit $rc)"
exit $rc
