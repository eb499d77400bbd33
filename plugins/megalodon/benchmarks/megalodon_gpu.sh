#!/usr/bin/env bash
# The Megalodon GPU tier in one command (needs a CUDA GPU and Triton; run from anywhere):
#
#     bash plugins/megalodon/benchmarks/megalodon_gpu.sh            # parity tests, then the benchmark
#     PYTHON=/path/to/venv/bin/python bash plugins/megalodon/benchmarks/megalodon_gpu.sh --lengths 4096 16384
#
# 1. the `gpu`-marked tests: every Triton parity check of tests/test_kernels.py (outputs, carried states,
#    gradients through outputs and states, the integer count, the whole model) with the *compiled* kernels
#    on CUDA (TRITON_INTERPRET=0), against the PyTorch path;
# 2. benchmarks/megalodon.py --device cuda (extra arguments are passed on): time and peak memory vs Llama.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python}"
"$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible: the GPU tier needs one')"
"$py" -c "import triton" || { echo "triton is not installed: pip install 'plugins/megalodon[triton]'" >&2; exit 1; }
export TRITON_INTERPRET=0
echo "== gpu-marked parity tests (compiled Triton kernels) =="
"$py" -m pytest -q -m gpu -rs "$here/../tests"
echo "== benchmark (CUDA) =="
"$py" "$here/megalodon.py" --device cuda "$@"
