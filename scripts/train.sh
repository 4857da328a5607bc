#!/usr/bin/env bash
# The main job on a fresh machine: set up .mrpc-venv, then fine-tune MiniLM on real MRPC offline.
#   bash scripts/train.sh                         # defaults below
#   bash scripts/train.sh --loop accelerate       # any `mrpc-check train` flag is passed through
#   bash scripts/train.sh --overwrite             # a finished run in runs/minilm is refused unless asked, like the CLI
# Set-up runs once: later calls find .mrpc-venv up to date and install nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/.ci/setup.sh"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
# The data: --data in "$@", else $MRPC_DATA, else ../shared/data/glue/MRPC beside the checkout (the CLI's own discovery).
exec "${MRPC_VENV:-$ROOT/.mrpc-venv}/bin/mrpc-check" train --model minilm --output-dir "$ROOT/runs/minilm" "$@"
