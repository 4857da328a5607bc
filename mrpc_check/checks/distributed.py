"""The battery at 2 processes: the adapter runs under ``torchrun`` (gloo on CPU), every rank observed.

``Battery.distributed_run()`` starts ``python -m torch.distributed.run --nproc_per_node 2 -m
mrpc_check.checks.distributed OUT SPEC ARCH`` once and reads back each rank's observation (rows
of every forward, steps and their learning rates), the gathered predictions, the final weights
and the first step's gradient. Adapters opt in with ``adapter.distributed = True`` and must be
loadable by spec (``package.module:adapter`` or ``file.py:adapter``), since each rank imports
its own copy. Under Accelerate or DDP the processes join the group themselves from torchrun's
environment.

The recipe at 2 processes: batch 4 per process, accumulation 2, 2 epochs; 22 training rows make
3 micro-batches per process and epoch (the last one uneven); 30 evaluation rows in batches of 4
leave an uneven last batch that ``gather_for_metrics`` must trim.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from mrpc_check.checks.contract import Recipe

PROCESSES = 2
RECIPE_2P = Recipe(epochs=2, batch_size=4, eval_batch_size=4, grad_accum=2, lr=1e-3, warmup_steps=1, seed=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(spec: str, arch: str, out: Path, timeout: int = 300) -> dict:
    """Run the worker on PROCESSES ranks; return {"ranks": [...], "weights": ..., "grads": ..., "start": ...} or {"error": text}."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(PROCESSES), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "mrpc_check.checks.distributed",
           str(out), spec, arch]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=os.getcwd())
    if proc.returncode != 0:
        tail = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-1:] or ["no output"]
        return {"error": f"torchrun exited {proc.returncode}: {tail[0][:200]}"}
    from safetensors.torch import load_file

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(PROCESSES)]
    return {"ranks": ranks, "weights": load_file(str(out / "weights.safetensors")),
            "grads": load_file(str(out / "grads1.safetensors")), "start": load_file(str(out / "start1.safetensors"))}


def _worker(out_dir: str, spec: str, arch_name: str) -> None:
    from safetensors.torch import save_file

    from mrpc_check.checks.contract import load_adapter, normalise_output
    from mrpc_check.checks.harness import ARCHES, make_data
    from mrpc_check.checks.observe import Observer, RowIndex
    from mrpc_check.batching import make_collator

    out = Path(out_dir)
    rank = int(os.environ.get("RANK", "0"))
    arch = ARCHES[arch_name]()
    data = make_data(arch.tokenizer)
    rows = RowIndex({"train": data["train"], "validation": data["validation"]}, arch.tokenizer.pad_token_id or 0)
    model = arch.make_model(0)
    model.eval()
    adapter = load_adapter(spec)
    observer = Observer(model, rows, capture=(1,))
    error, predictions = None, []
    try:
        with observer:
            value = adapter(model, data["train"], data["validation"], make_collator(arch.tokenizer), RECIPE_2P)
        predictions = normalise_output(value, len(data["validation"]), spec).predictions
    except Exception as exc:  # reported, not raised: the parent turns it into a verdict
        error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    obs = observer.observation
    record = {
        "rank": rank, "error": error, "predictions": predictions, "final_lrs": obs.final_lrs,
        "forwards": [{"rows": f.rows, "training": f.training, "grad": f.grad_enabled, "steps_before": f.steps_before} for f in obs.forwards],
        "steps": [{"lrs": s.lrs, "grad_norm": s.grad_norm} for s in obs.steps],
    }
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    if rank == 0:
        state = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters()}
        save_file(state, str(out / "weights.safetensors"))
        first = obs.steps[0] if obs.steps else None
        grads = {n: g.contiguous() for n, g in (first.grads or {}).items() if g is not None} if first else {}
        start = {n: w.contiguous() for n, w in (first.weights or {}).items()} if first else {}
        save_file(grads or {"none": torch.zeros(1)}, str(out / "grads1.safetensors"))
        save_file(start or {"none": torch.zeros(1)}, str(out / "start1.safetensors"))


if __name__ == "__main__":
    _worker(*sys.argv[1:4])
