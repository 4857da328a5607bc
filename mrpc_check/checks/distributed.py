"""The battery at 2 processes (gloo on CPU), every rank observed.

``distributed_run(battery)`` starts the ranks once and reads back each rank's observation (rows
of every forward, steps and their learning rates), the gathered predictions, the final weights
and the first step's gradient. Adapters opt in with ``adapter.distributed = True`` and must be
loadable by spec (``package.module:adapter`` or ``file.py:adapter``). Under Accelerate or DDP the
processes join the group themselves from the environment torchrun would give them (RANK,
WORLD_SIZE, MASTER_ADDR, ...).

Two ways to start the ranks, same environment, same worker:

* ``fork`` (default on Linux while CUDA is untouched): each rank is a fork of this process, so
  nothing is imported again; about a second where ``torchrun`` takes 10 to 20 on 2 cores, which
  is what keeps the 2-process checks in the default test run. Each rank gets one torch thread
  and Accelerate's state reset; this is how ``accelerate.notebook_launcher`` starts CPU ranks.
* ``torchrun``: ``python -m torch.distributed.run --nproc_per_node 2 -m
  mrpc_check.checks.distributed OUT SPEC ARCH``, fresh interpreters, as users launch jobs.
  Chosen where fork is unsafe (CUDA initialised, not Linux) or by ``MRPC_CHECK_LAUNCH=torchrun``.

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
import warnings
from pathlib import Path

import torch

from mrpc_check.checks.contract import Recipe

PROCESSES = 2
RECIPE_2P = Recipe(epochs=2, batch_size=4, eval_batch_size=4, grad_accum=2, lr=1e-3, warmup_steps=1, seed=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# MRPC_CHECK_LAUNCH=torchrun|fork overrides the choice (fork where it is unsafe falls back to torchrun).
LAUNCH_ENV = "MRPC_CHECK_LAUNCH"


def launch_method(requested: str | None = None) -> str:
    """``fork`` where forking this process is safe (Linux, CUDA not initialised), else ``torchrun``."""
    from mrpc_check.errors import ConfigError

    requested = requested or os.environ.get(LAUNCH_ENV) or "fork"
    if requested not in ("fork", "torchrun"):
        raise ConfigError(f"{LAUNCH_ENV}={requested!r}: set it to fork or torchrun, or unset it")
    # A forked child cannot use a CUDA context its parent created; macOS forks badly with threads.
    fork_safe = sys.platform.startswith("linux") and hasattr(os, "fork") and not torch.cuda.is_initialized()
    return "fork" if requested == "fork" and fork_safe else "torchrun"


def distributed_run(battery) -> dict:
    """The battery's adapter on 2 processes under torchrun, observed on every rank (cached on the battery).

    A function here rather than a method of :class:`~mrpc_check.checks.harness.Battery`: the launcher
    needs the harness's tiny data and models, so the harness must not need the launcher.
    """
    if "_2p" not in battery._runs:
        battery._runs["_2p"] = launch(battery.spec, battery.arch.name, Path(battery.workdir("two-processes")), built=battery.arch)
    return battery._runs["_2p"]


TIMEOUT_ENV = "MRPC_PROCESS_TIMEOUT"  # seconds the 2 ranks may take, all of it (`verify --process-timeout` sets it)
DEFAULT_TIMEOUT = 300
_TIMED_OUT = "did not finish within"  # in the error line of a run that ran out of time (an `error` verdict, not a failure)


def machine_load() -> str:
    """' (load average L on C cores: ...)' when the machine was busier than its cores, else ''.

    The ranks wait on each other blocked, not spinning (measured: beside two 2-thread processes on 2 cores, the
    2-process verify took 2.8x the wall time for 1.15x the CPU time), so a run that times out on a busy machine got
    a small share of the cores: that share, named, tells a slow machine from a hung loop.
    """
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (AttributeError, OSError):  # not on every platform
        return ""
    if load <= cores:
        return ""
    return (f" (load average {load:.1f} on {cores} cores: each rank got about {min(1.0, cores / load):.1f} of a "
            "core; run it on an idle machine or raise the limit)")


def process_timeout() -> float:
    """The 2-process run's limit in seconds: MRPC_PROCESS_TIMEOUT, else 300; a bad value is one line naming the fix."""
    from mrpc_check.errors import ConfigError

    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: give the 2-process run's limit in seconds (a number > 0), or unset it for {DEFAULT_TIMEOUT}")
    return value


def launch(spec: str, arch: str, out: Path, timeout: float | None = None, method: str | None = None, built=None) -> dict:
    """Run the worker on PROCESSES ranks; return {"ranks": [...], "weights": ..., "grads": ..., "start": ...} or {"error": text}.

    ``built``: the battery's model family (its ``harness.Arch``) named ``arch``; forked ranks use it as it
    is (its tokenizer and tokenized rows), torchrun's fresh interpreters build the family again by name.
    """
    forked = launch_method(method) == "fork"
    timeout = process_timeout() if timeout is None else timeout
    error = _run_forked(spec, arch, out, timeout, built) if forked else _run_torchrun(spec, arch, out, timeout)
    if error:
        return {"error": error, "timed_out": _TIMED_OUT in error}
    from safetensors.torch import load_file

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(PROCESSES)]
    return {"ranks": ranks, "weights": load_file(str(out / "weights.safetensors")),
            "grads": load_file(str(out / "grads1.safetensors")), "start": load_file(str(out / "start1.safetensors"))}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _run_forked(spec: str, arch: str, out: Path, timeout: int, built=None) -> str | None:
    """Fork PROCESSES ranks of this process with torchrun's environment; an error line, or None."""
    # Import once here what every rank needs, so the forks share it instead of importing it twice.
    import mrpc_check.checks.harness  # noqa: F401
    import mrpc_check.checks.observe  # noqa: F401
    from mrpc_check.checks.contract import load_adapter

    load_adapter(spec)
    try:
        import accelerate  # noqa: F401
    except ImportError:
        pass
    port = str(free_port())
    pids = {}
    for rank in range(PROCESSES):
        log = out / f"rank{rank}.log"
        with warnings.catch_warnings():
            # Python >= 3.12 warns when a process with threads forks (a lock held by another thread
            # stays held in the child). The rank only runs torch and this package, with one torch
            # thread, as accelerate.notebook_launcher's CPU ranks do; the parent's test-runner and
            # pool threads are never touched in the child.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the rank: never returns into the caller (its test runner, its atexit hooks)
            code = 1
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                # The parent's sys.stdout/err may be a test runner's capture object, not fds 1 and 2.
                sys.stdout = sys.stderr = os.fdopen(fd, "w", buffering=1)
                os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(PROCESSES), LOCAL_WORLD_SIZE=str(PROCESSES),
                                  GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1")
                torch.set_num_threads(1)  # 2 ranks on the cores; and no OpenMP pool inherited from the parent
                from mrpc_check.checks.harness import _reset_accelerate

                _reset_accelerate()  # the parent's single-process Accelerate state must not leak into the rank
                _worker(str(out), spec, arch, built)
                code = 0
            except BaseException:  # noqa: BLE001 - written to the rank's log, read back by the parent
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        pids[pid] = rank
    return _wait_ranks(pids, out, timeout)


def _wait_ranks(pids: dict, out: Path, timeout: int) -> str | None:
    """Reap the forked ranks; kill them all past ``timeout`` or once one fails (the other would wait forever)."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    failed = None
    while pids:
        for pid in list(pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rank = pids.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                if code != 0 and failed is None:
                    log = out / f"rank{rank}.log"
                    failed = f"rank {rank} exited {code}: {_last_line(log.read_text(errors='replace') if log.exists() else '')}"
        if pids and (failed or time.monotonic() > deadline):
            failed = failed or f"the {PROCESSES} ranks {_TIMED_OUT} {timeout:g} s{machine_load()}"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            for pid in pids:
                os.waitpid(pid, 0)
            pids.clear()
        time.sleep(0.01)
    return failed


def _run_torchrun(spec: str, arch: str, out: Path, timeout: int) -> str | None:
    """Start the ranks with torchrun, fresh interpreters; an error line, or None."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(PROCESSES), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           # Without a log folder torchrun makes one in the system temp folder and never removes it.
           "--log-dir", str(out / "torchrun-logs"), "-m", "mrpc_check.checks.distributed", str(out), spec, arch]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=os.getcwd())
    except subprocess.TimeoutExpired:
        return f"torchrun {_TIMED_OUT} {timeout:g} s{machine_load()}"
    if proc.returncode != 0:
        return f"torchrun exited {proc.returncode}: {_last_line(proc.stderr or proc.stdout)}"
    return None


def group_seen() -> dict:
    """What this rank's process group was once the loop ran: torch.distributed's world size, and Accelerate's view.

    A loop whose ranks never joined one group (``Accelerator()`` without ``cpu=True`` on a machine with
    no GPU falls back to one process per rank) shows world size 1 here, whatever WORLD_SIZE said.
    """
    import torch.distributed as dist

    initialized = dist.is_available() and dist.is_initialized()
    seen = {"initialized": bool(initialized), "world_size": dist.get_world_size() if initialized else 1,
            "backend": str(dist.get_backend()) if initialized else None, "accelerate": None}
    try:
        from accelerate.state import PartialState

        state = PartialState._shared_state
        if state:
            seen["accelerate"] = {"num_processes": int(state.get("num_processes", 1)),
                                  "distributed_type": "DistributedType." + str(state.get("distributed_type", "")).split(".")[-1]}
    except Exception:  # accelerate missing or its state laid out otherwise: torch's view alone
        pass
    return seen


def _worker(out_dir: str, spec: str, arch_name: str, built=None) -> None:
    from safetensors.torch import save_file

    from mrpc_check.checks.contract import capabilities, load_adapter, normalise_output
    from mrpc_check.checks.harness import ARCHES
    from mrpc_check.checks.observe import Observer, RowIndex
    from mrpc_check.pipeline.batching import make_collator

    out = Path(out_dir)
    rank = int(os.environ.get("RANK", "0"))
    # A forked rank shares the parent's family (tokenizer, tokenized rows): no tokenizer to load or train again.
    arch = built if built is not None else ARCHES[arch_name]()
    data = arch.data()
    rows = RowIndex({"train": data["train"], "validation": data["validation"]}, arch.tokenizer.pad_token_id or 0)
    model = arch.make_model(0)
    model.eval()
    adapter = load_adapter(spec)
    observer = Observer(model, rows, capture=(1,))
    error, predictions = None, []
    try:
        with observer:
            # Declared-absent features at their neutral value, as in the single-process battery.
            value = adapter(model, data["train"], data["validation"], make_collator(arch.tokenizer), capabilities(adapter).neutral(RECIPE_2P))
        predictions = normalise_output(value, len(data["validation"]), spec).predictions
    except Exception as exc:  # reported, not raised: the parent turns it into a verdict
        error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    obs = observer.observation
    record = {
        "rank": rank, "error": error, "predictions": predictions, "final_lrs": obs.final_lrs, "group": group_seen(),
        "forwards": [{"rows": f.rows, "training": f.training, "grad": f.grad_enabled, "steps_before": f.steps_before} for f in obs.forwards],
        "steps": [{"lrs": s.lrs, "grad_norm": s.grad_norm, "scheduler_calls": s.scheduler_calls} for s in obs.steps],
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
