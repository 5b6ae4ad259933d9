#!/usr/bin/env bash
# The GPU acceptance run, one command (issue 10; docs/backends.md says what only a GPU can prove):
#
#   benchmarks/gpu_check.sh [--no-install | --install] [--full] OUT_DIR [MNIST_DIR]   # CUDA, CuPy, PyTorch
#   benchmarks/gpu_check.sh --dry-run OUT_DIR                                      # anywhere, on the CPU
#
# xpnet comes from this checkout (prepended to PYTHONPATH; a PYTHONPATH set outside, e.g. to unpacked
# array-api-compat/array-api-strict wheels, is kept). Nothing is installed unless --install is given
# (then: pip install -e ".[test]"); --no-install says so explicitly.
#
# Steps, each logged to OUT_DIR and bounded by XPNET_STEP_TIMEOUT seconds (default 420; a failing step
# is recorded and the next still runs; the exit status is non-zero if any failed):
#   1. tests: every cupy and torch-CUDA parametrisation of the suite (--full: the whole suite), among
#      them the training steps under the sync guard (cupyx.allow_synchronize(False),
#      torch.cuda.set_sync_debug_mode("error")) in tests/test_gpu.py and tests/test_devices.py
#   1b. cupy_kernels: the native kernels against the reference on the GPU (issue 25), with CuPy's
#      (unverified, off by default) turned on by XPNET_CUPY_KERNELS=1: tests/test_conv.py's both-path
#      gradient checks and direct comparisons (convolution and max-pooling, forward and backward) for
#      cupy and torch-CUDA. Only when this step passes may CuPy's kernels be turned on by default.
#   2. xpnet train --backend cupy on MNIST (digits if absent): the articles' MLP and SimpleConvNet
#   3. the pytest-benchmark suite for cupy and torch-CUDA (benchmarks.json)
#   4. xpnet bench for CuPy and torch-CUDA (bench_*.json)
#   5. figures.md: the figures of 3-4 as Markdown for docs/benchmarks.md, naming the raw files
# --dry-run: the same steps, small, on the CPU, with the step tests on the emulated devices
# (array_api_strict:device1, torch:meta); the test suite runs it, so the script cannot rot.
# MNIST_DIR defaults to $XPNET_DATA/mnist, then ../shared/data/mnist beside the repository.
set -uo pipefail
dry=0 install=0 full=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --install) install=1 ;;
    --no-install) install=0 ;;
    --full) full=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    --*) echo "gpu_check.sh: unknown option $1 (valid: --dry-run --install --no-install --full)" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
out=${1:?usage: benchmarks/gpu_check.sh [--dry-run] [--install|--no-install] [--full] OUT_DIR [MNIST_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
mnist=${2:-${XPNET_DATA:+$XPNET_DATA/mnist}}
[ -n "$mnist" ] || mnist="$repo/../shared/data/mnist"
limit=${XPNET_STEP_TIMEOUT:-420}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
echo "benchmarks/gpu_check.sh $*$([ $dry -eq 1 ] && echo ' (--dry-run)')$([ $full -eq 1 ] && echo ' (--full)')" > "$out/command.txt"
: > "$out/summary.txt"
if [ $install -eq 1 ]; then
  python -m pip install -e ".[test]" || { echo "pip install failed" | tee -a "$out/summary.txt"; exit 2; }
fi
python -c "import numpy, array_api_compat, pytest" 2>/dev/null || {
  echo "numpy, array-api-compat and pytest must be importable: set PYTHONPATH to them or pass --install" \
    | tee -a "$out/summary.txt"; exit 2; }

failed=()
step() {  # step NAME COMMAND...: run (bounded), tee to OUT/NAME.log, remember failures
  local name=$1; shift
  echo "== $name: $*" | tee -a "$out/summary.txt"
  local start=$SECONDS
  timeout "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  echo "   -> exit $rc ($((SECONDS - start)) s)" | tee -a "$out/summary.txt"
  [ $rc -eq 0 ] || failed+=("$name")
}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  python -c "import sys, xpnet, numpy, array_api_compat; print('python', sys.version.split()[0], 'xpnet', xpnet.__version__, 'numpy', numpy.__version__, 'array-api-compat', array_api_compat.__version__, 'backends', xpnet.available_backends())"
  python -c "import array_api_strict; print('array-api-strict', array_api_strict.__version__)" 2>&1 | tail -1
  python -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tail -1
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

if [ $dry -eq 1 ]; then
  step tests python -m pytest tests/test_gpu.py tests/test_devices.py -q -rs -p no:cacheprovider --junitxml "$out/tests.xml"
  step cupy_kernels env XPNET_CUPY_KERNELS=1 python -m pytest tests/test_conv.py -q -rs -p no:cacheprovider \
       -k "native_relu or native_max_pooling_matches" --junitxml "$out/cupy_kernels.xml"
  step train_mlp python -m xpnet train --backend numpy --epochs 2 --quiet --history "$out/train_mlp.json"
  step train_cnn python -m xpnet train --backend numpy --model simple-cnn --optimizer adam --lr 0.001 --epochs 1 \
       --quiet --history "$out/train_cnn.json"
  step benchmarks env XPNET_BENCH_QUICK=1 python -m pytest benchmarks -q -p no:cacheprovider -k "numpy" \
       --benchmark-enable --benchmark-min-rounds=1 --benchmark-max-time=0.01 --benchmark-json "$out/benchmarks.json"
  step bench_numpy python -m xpnet bench --backend numpy --network tiny --rounds 1 --min-time 0.01 --json "$out/bench_numpy.json"
else
  python -c "import xpnet; xpnet.set_backend('cupy')" || { echo "no usable CuPy/CUDA here: use --dry-run"; exit 2; }
  if [ $full -eq 1 ]; then
    step tests python -m pytest tests -q -rs -p no:cacheprovider --junitxml "$out/tests.xml"
  else
    step tests python -m pytest tests -q -rs -p no:cacheprovider -k "cupy or cuda" --junitxml "$out/tests.xml"
  fi
  step cupy_kernels env XPNET_CUPY_KERNELS=1 python -m pytest tests/test_conv.py tests/test_devices.py -q -rs \
       -p no:cacheprovider -k "(cupy or cuda) and (native or gradient_check or both_kernel or direct_loops)" \
       --junitxml "$out/cupy_kernels.xml"
  epochs_mlp=5 epochs_cnn=2
  [ $full -eq 1 ] && epochs_mlp=50 epochs_cnn=20
  if [ -d "$mnist" ]; then
    step train_mlp python -m xpnet train --backend cupy --dataset mnist --data-path "$mnist" --epochs $epochs_mlp \
         --quiet --history "$out/train_mlp.json"
    step train_cnn python -m xpnet train --backend cupy --dataset mnist --data-path "$mnist" --model simple-cnn \
         --optimizer adam --lr 0.001 --epochs $epochs_cnn --quiet --history "$out/train_cnn.json"
  else
    echo "MNIST not found at $mnist: training on digits instead" | tee -a "$out/summary.txt"
    step train_mlp python -m xpnet train --backend cupy --epochs 20 --quiet --history "$out/train_mlp.json"
  fi
  step benchmarks python -m pytest benchmarks -q -p no:cacheprovider -k "cupy or cuda" --benchmark-enable \
       --benchmark-max-time=0.5 --benchmark-group-by=group --benchmark-columns=median,iqr,rounds \
       --benchmark-json "$out/benchmarks.json"
  step bench_cupy python -m xpnet bench --backend cupy --json "$out/bench_cupy.json"
  step bench_cupy_kernels env XPNET_CUPY_KERNELS=1 python -m xpnet bench --backend cupy --network simplecnn,deepcnn \
       --no-numgrad --json "$out/bench_cupy_kernels.json"
  step bench_torch_cuda python -m xpnet bench --backend torch --device cuda:0 --no-numgrad --json "$out/bench_torch_cuda.json"
fi
step figures python benchmarks/gpu_figures.py "$out"

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED steps: ${failed[*]}" | tee -a "$out/summary.txt"
  exit 1
fi
echo "all steps passed; results in $out" | tee -a "$out/summary.txt"
