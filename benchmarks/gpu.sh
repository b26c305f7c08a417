#!/usr/bin/env bash
# The GPU benchmark in one command (< 8 minutes on one GPU); writes benchmarks/results/gpu-*.json.
#   benchmarks/gpu.sh            # on the GPU machine (uses its own jax; installs nothing)
#   benchmarks/gpu.sh --smoke    # tiny sizes, end to end on CPU (no time limit)
# The persistent compilation cache goes to a temporary directory so that compile times are real.
set -euo pipefail
cd "$(dirname "$0")/.."
export JAXMED_CACHE_DIR="${JAXMED_CACHE_DIR:-$(mktemp -d)/xla}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
limit=470  # seconds: the N-grid stops between cells at --budget-s (420), JSON saved per part
case " $* " in *" --smoke "*) limit=0 ;; esac
exec timeout "$limit" env PYTHONPATH=. python3 benchmarks/gpu_bench.py "$@"
