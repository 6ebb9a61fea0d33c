#!/usr/bin/env bash
# Set-up in one command: a virtual environment with torch, recbole-rlmm (editable, with RecBole
# 1.2.1) and the test tools. Then `. .venv/bin/activate`.
#
#   bash install.sh                 # .venv, CPU torch 2.13.0 unless a torch is already there
#   bash install.sh --features      # + the offline text/image encoders of `recbole-rlmm prepare`
#   VENV=/path/env TORCH="torch==2.13.0" bash install.sh
#
# torch is installed first, on its own, so that nothing pulls a multi-GB CUDA build you did not
# ask for: TORCH is the pip requirement used (default torch==2.13.0; on Linux x86_64 from PyPI
# that is a CUDA build: add TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU one).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
TORCH=${TORCH:-torch==2.13.0}
EXTRAS=test
for arg in "$@"; do
  case "$arg" in
    --features) EXTRAS="$EXTRAS,features" ;;
    *) echo "usage: bash install.sh [--features]" >&2; exit 2 ;;
  esac
done
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX:-}" ]; then
    "$VENV/bin/pip" install -q "$TORCH" --index-url "$TORCH_INDEX"
  else
    "$VENV/bin/pip" install -q "$TORCH"
  fi
fi
"$VENV/bin/pip" install -q -e ".[$EXTRAS]"
"$VENV/bin/python" -c "import torch, recbole_rlmm; print(f'recbole-rlmm {recbole_rlmm.__version__}, torch {torch.__version__} in $VENV; now run: . $VENV/bin/activate')"
