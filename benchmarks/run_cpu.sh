#!/usr/bin/env bash
# The CPU benchmark run behind docs/benchmarks.md, in one command:
#   benchmarks/run_cpu.sh [OUT_DIR]        (default docs/bench-cpu-$(date +%F))
# Writes OUT_DIR/pytest-benchmark.json (raw pytest-benchmark output, numpy backend beside PyTorch eager),
# OUT_DIR/bench.json + bench.txt (`xpnet bench`: interleaved rounds, min/median/max, peak memory, kernels),
# OUT_DIR/epoch.json (one SimpleConvNet epoch on MNIST, xpnet vs PyTorch), OUT_DIR/layers.json + layers.txt
# (each CNN layer's forward and backward alone: benchmarks/layer_profile.py), OUT_DIR/bound.json + bound.txt
# (DeepConvNet's convolution products in their best layouts: benchmarks/conv_gemm_bound.py) and OUT_DIR/env.txt.
# Benchmarks only: the pinned OpenBLAS kernel of these machines is unset for every command
# (never do this in tests or CI). ROUNDS=15 MIN_TIME=0.3 to tighten; EPOCH=0 to skip the epoch;
# SUITE='numpy and (step or conv or layer_kernel)' narrows the pytest-benchmark stage (default: all numpy
# cases), MAX_TIME its seconds per case (default 1); BENCH=0 skips the `xpnet bench` stage. env.txt is
# appended to, one block per invocation. MNIST=DIR: the MNIST IDX folder (default: xpnet's search path);
# REPEATS: epochs per framework (default 2); PROFILE=0 skips the per-layer profile, BOUND=0 the products' bound.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/bench-cpu-$(date +%F)}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-$PWD}
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
rounds=${ROUNDS:-9}
min_time=${MIN_TIME:-0.2}
{
  echo "command: benchmarks/run_cpu.sh $out (ROUNDS=$rounds MIN_TIME=$min_time SUITE=${SUITE:-numpy} MAX_TIME=${MAX_TIME:-1} EPOCH=${EPOCH:-1} BENCH=${BENCH:-1})"
  echo "date: $(date -u +%FT%TZ)"; echo "git: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "uptime: $(uptime)"; nproc; lscpu 2>/dev/null | grep -E "Model name|^CPU\(s\)|Thread" || true
  run python -c "import numpy, sys, xpnet.bench as b; print('python', sys.version.split()[0], 'numpy', numpy.__version__); \
import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads()); print(*b.describe_blas(b.blas_info()), sep='\n')"
} > "$out/env.last.txt" 2>&1
cat "$out/env.last.txt" | tee -a "$out/env.txt"; rm "$out/env.last.txt"
[ "${BENCH:-1}" = 0 ] || run python -m xpnet bench --backend numpy --network small,large,simplecnn,deepcnn --kernels --rounds "$rounds" \
    --min-time "$min_time" --json "$out/bench.json" | tee "$out/bench.txt"
run python -m pytest benchmarks -q -p no:cacheprovider -k "${SUITE:-numpy}" --benchmark-enable --benchmark-group-by=group \
    --benchmark-max-time="${MAX_TIME:-1}" --benchmark-columns=min,median,max,rounds --benchmark-sort=name \
    --benchmark-json "$out/pytest-benchmark.json" \
    | tee "$out/pytest-benchmark.txt"
[ "${PROFILE:-1}" = 0 ] || run python benchmarks/layer_profile.py --json "$out/layers.json" | tee "$out/layers.txt"
[ "${BOUND:-1}" = 0 ] || run python benchmarks/conv_gemm_bound.py --json "$out/bound.json" | tee "$out/bound.txt"
if [ "${EPOCH:-1}" != 0 ]; then
  run python benchmarks/epoch_mnist.py ${MNIST:+"$MNIST"} --repeats "${REPEATS:-2}" --json "$out/epoch.json"
fi
echo "wrote $out"
