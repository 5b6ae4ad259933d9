#!/usr/bin/env bash
# The GPU acceptance run (issue "CuPy on a real GPU"), one command:
#
#   benchmarks/gpu_check.sh OUT_DIR [MNIST_DIR]        # on a machine with CUDA, CuPy and PyTorch
#   benchmarks/gpu_check.sh --dry-run OUT_DIR          # anywhere: the same steps, small, on the CPU
#
# Steps, each logged to OUT_DIR (a failing step is recorded and the next still runs; the exit
# status is non-zero if any failed):
#   1. the full test suite, cupy and torch-CUDA included (tests.log, tests.xml)
#   2. xpnet train --backend cupy on MNIST: the MLP of the articles and SimpleConvNet (train_*.log/json)
#   3. the pytest-benchmark suite for cupy and torch-CUDA (benchmarks.log/json)
#   4. xpnet bench: xpnet vs PyTorch vs the GEMM bound, CuPy and torch-CUDA in one run each (bench_*.json)
# MNIST_DIR defaults to $XPNET_DATA/mnist, then ../shared/data/mnist beside the repository.
set -uo pipefail
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
out=${1:?usage: benchmarks/gpu_check.sh [--dry-run] OUT_DIR [MNIST_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
mnist=${2:-${XPNET_DATA:+$XPNET_DATA/mnist}}
[ -n "$mnist" ] || mnist="$repo/../shared/data/mnist"
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
failed=()
step() {  # step NAME COMMAND...: run, tee to OUT/NAME.log, remember failures
  local name=$1; shift
  echo "== $name: $*" | tee -a "$out/summary.txt"
  "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  echo "   -> exit $rc" | tee -a "$out/summary.txt"
  [ $rc -eq 0 ] || failed+=("$name")
}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  python -c "import xpnet, numpy; print('xpnet', xpnet.__version__, 'numpy', numpy.__version__, 'backends', xpnet.available_backends())"
  python -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tail -1
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

if [ $dry -eq 1 ]; then
  backend=numpy; torch_dev=cpu
  step tests python -m pytest tests/test_gpu.py -q -rs --junitxml "$out/tests.xml"
  step train_mlp xpnet train --backend $backend --epochs 2 --quiet --history "$out/train_mlp.json"
  step train_cnn xpnet train --backend $backend --model simple-cnn --optimizer adam --lr 0.001 --epochs 1 --quiet \
       --history "$out/train_cnn.json"
  step benchmarks env XPNET_BENCH_QUICK=1 python -m pytest benchmarks -q -k "numpy" --benchmark-enable \
       --benchmark-min-rounds=1 --benchmark-max-time=0.01 --benchmark-json "$out/benchmarks.json"
  step bench_numpy xpnet bench --backend numpy --network tiny --rounds 1 --min-time 0.01 --json "$out/bench_numpy.json"
else
  python -c "import xpnet; xpnet.set_backend('cupy')" || { echo "no usable CuPy/CUDA here: use --dry-run"; exit 2; }
  step tests python -m pytest tests -q -rs --junitxml "$out/tests.xml"
  if [ -d "$mnist" ]; then
    step train_mlp xpnet train --backend cupy --dataset mnist --data-path "$mnist" --quiet --history "$out/train_mlp.json"
    step train_cnn xpnet train --backend cupy --dataset mnist --data-path "$mnist" --model simple-cnn \
         --optimizer adam --lr 0.001 --epochs 20 --quiet --history "$out/train_cnn.json"
  else
    echo "MNIST not found at $mnist: training on digits instead" | tee -a "$out/summary.txt"
    step train_mlp xpnet train --backend cupy --quiet --history "$out/train_mlp.json"
  fi
  step benchmarks python -m pytest benchmarks -q -k "cupy or cuda" --benchmark-enable \
       --benchmark-group-by=group --benchmark-columns=median,iqr,rounds --benchmark-json "$out/benchmarks.json"
  step bench_cupy xpnet bench --backend cupy --json "$out/bench_cupy.json"
  step bench_torch_cuda xpnet bench --backend torch --device cuda:0 --no-numgrad --json "$out/bench_torch_cuda.json"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED steps: ${failed[*]}" | tee -a "$out/summary.txt"
  exit 1
fi
echo "all steps passed; results in $out" | tee -a "$out/summary.txt"
