#!/usr/bin/env bash
# The GPU check, under 5 minutes on a machine with a CUDA GPU and a CUDA build of torch:
#   1. the GPU test tier (pytest -m gpu; the slow bf16 acceptance only when MRPC_DATA is set),
#   2. a short bf16-vs-fp32 training throughput benchmark of a bert-base-sized model.
# A pass: every gpu test passes (none skipped) and the benchmark prints its samples/s.
# Needs the package's dependencies importable (bash scripts/train.sh sets them up). Without network,
# point WHEELS at a folder of wheels for whatever is missing (datasets, evaluate, ...): they are
# installed into a scratch folder first.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHEELS="${WHEELS:-.whl}"
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl && export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
marker="gpu and not slow"
[ -n "${MRPC_DATA:-}" ] && marker="gpu"
timeout 200 python3 -m pytest -p mrpc_check.acceptance.plugin -m "$marker" -q -rs tests/ ; tests=$?
timeout 60 python3 benchmarks/gpu_throughput.py --steps 40 ; bench=$?
echo "gpu_check: tests rc=$tests, benchmark rc=$bench"
exit $(( tests || bench ))
