#!/usr/bin/env bash
# The GPU benchmark in one command (< 8 minutes on one GPU); writes benchmarks/results/gpu-*.json.
#   benchmarks/gpu.sh            # on the GPU machine (uses its own jax; installs nothing)
#   benchmarks/gpu.sh --smoke    # tiny sizes, end to end on CPU
# The persistent compilation cache goes to a temporary directory so that compile times are real.
set -euo pipefail
cd "$(dirname "$0")/.."
export JAXMED_CACHE_DIR="${JAXMED_CACHE_DIR:-$(mktemp -d)/xla}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec timeout 470 env PYTHONPATH=. python3 benchmarks/gpu_bench.py "$@"
