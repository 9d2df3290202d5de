#!/usr/bin/env bash
# The GPU check: one prepared run on a machine with an NVIDIA GPU (numba-cuda, CuPy, PyTorch and JAX
# installed; no network needed). Run from the repository root:
#
#     bash bench/gpu_check.sh OUT_DIR
#
# Steps, each under its own timeout, each writing its log into OUT_DIR as it goes (a step that runs
# out of time leaves what it wrote):
#   1. install warpinit without dependencies (no build isolation; a plain copy if pip cannot);
#   2. the CUDA kernel tests on the real GPU (no simulator);
#   3. the GPU sampling benchmark: warpinit against torch, JAX and CuPy at 10^8 and 10^9 float32 elements,
#      with a device fill as the bandwidth limit (warpinit bench --device cuda);
#   4. the GPU orthogonal benchmark: a stack of 64 x 4096^2 and one of 1024 x 128^2 float32 against
#      torch's orthogonal_ looped and torch.linalg.qr batched, with a GEMM as the flop-rate limit;
#   5. warpinit.torch and warpinit.jax against torch.nn.init and jax.nn.initializers on the GPU;
#   6. the PyTorch and JAX faces' tests, whose CUDA tests run only here (DLPack views of CUDA tensors);
#   7. the rest of the test suite on this machine (the wheel test skips here).
# Aim: about 5 minutes in total; the step timeouts add up to 590 s, under the 600 s a single command may
# run on the lent GPU machine.
set -u
OUT=${1:-gpu-check-results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PYTHONUNBUFFERED=1 WARPINIT_GPU_CHECK=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  echo "== $name (timeout ${seconds}s)" | tee -a "$OUT/summary.txt"
  local start=$SECONDS
  timeout "$seconds" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc in $((SECONDS - start))s" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log"
  return 0
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import sys, numba, numba_cuda, cupy; print(sys.version.split()[0], 'numba', numba.__version__, 'numba-cuda', numba_cuda.__version__, 'cupy', cupy.__version__)"
  $PY -c "import torch; print('torch', torch.__version__)" 2>/dev/null
  $PY -c "import jax; print('jax', jax.__version__, jax.devices())" 2>/dev/null
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

SITE=$(mktemp -d)/site
install() {
  if $PY -m pip install --no-deps --no-build-isolation -q -e . ; then
    return 0
  fi
  # Fallback without pip: lay the package out as the wheel does.
  mkdir -p "$SITE/warpinit"
  cp -r bindings/. "$SITE/warpinit/"
  cp -r kernels "$SITE/warpinit/kernels"
  cp -r bench "$SITE/warpinit/bench"
  echo "installed by copy into $SITE"
}
step install 60 install
if ! $PY -c "import warpinit" 2>/dev/null; then
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi

step cuda_tests 100 env WARPINIT_CUDA_TESTS=1 $PY -m pytest -q -p no:cacheprovider tests/cuda_kernels
step gpu_bench 90 $PY -m warpinit bench --device cuda --sizes 1e8,1e9 --peers torch,jax,cupy --repeats 5 --out "$OUT/bench"
step gpu_orthogonal 80 $PY -m warpinit bench --device cuda --ops orthogonal --orthogonal-shapes 64x4096,1024x128 \
  --peers torch,torch-qr --repeats 3 --out "$OUT/orthogonal"
step gpu_faces_bench 60 $PY -m warpinit bench --device cuda --ops torch_init,jax_init --peers torch,jax --repeats 3 \
  --out "$OUT/faces"
step faces 90 $PY -m pytest -q -p no:cacheprovider tests/test_torch.py tests/test_jax.py -rs
step cpu_tests 110 $PY -m pytest -q -p no:cacheprovider tests -x --deselect tests/test_cuda_simulator.py
echo "== done" | tee -a "$OUT/summary.txt"
