"""The Ray engine: every seed one Ray task, on whatever nodes the cluster has.

One of the sweep's engines (see :func:`mrpc_check.acceptance.sweep.engine`); nothing but the sweep
imports this module, and it is the only one that imports Ray (the optional extra
``mrpc_check[ray]``).

- **Where it runs.** Without an address, a local Ray instance on this machine (the same code
  path); with one, an existing cluster (``ray start --head`` on one node, ``ray start --address``
  on the others; ``auto`` inside a Ray job). Each task declares ``cpus_per_run`` CPUs (its torch
  threads) and ``gpus_per_run`` GPUs; Ray places it.
- **Nothing lost on a failing node.** A task whose worker process dies (killed, preempted, out
  of memory) is retried by Ray up to ``max_retries`` times; the retry resumes from the seed's
  last checkpoint when there is one (``--checkpoint-every``), so it repeats at most the steps
  since. So is a run stopped by SIGTERM (preemption: it checkpoints, then raises ``Preempted``).
  Any other error the run raises is not retried (it would raise again): the seed is reported
  failed, with the error.
- **Where results live.** Every task writes ``OUTPUT/seed-<s>/`` where it runs: OUTPUT must be
  on storage every node sees (a shared file system). A task that cannot write it fails at once
  with the path and the node. The entry the sweep keeps (metrics, interval, degenerate) comes back
  to the driver through Ray, so ``sweep.json`` is complete whatever the workers' storage.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from mrpc_check.errors import ConfigError

# Passed to the workers: on a cluster started by `ray start`, workers inherit that command's
# environment, not the driver's; offline mode and the data location must follow the sweep.
_FORWARDED = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "MRPC_DATA", "TOKENIZERS_PARALLELISM", "TRANSFORMERS_OFFLINE")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'mrpc_check[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def _token_auth_like_ray_start() -> None:
    """Send the cluster's auth token when there is one, as `ray start` does.

    Ray (2.60) turns token authentication on in `ray start` whenever a token exists
    (``~/.ray/auth_token``, written by any earlier local ``ray.init()``), but a driver joining
    with ``ray.init(address=...)`` sends it only under ``RAY_AUTH_MODE=token``: without this, it
    is refused ("InvalidAuthToken") by a cluster started on the same machine or account.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return  # the user's explicit choice
    try:  # Ray's own rule, which also refreshes its cached config (the variable alone comes too late after import)
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # a Ray without token authentication: nothing to send
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _writable(folder: Path) -> None:
    """Fail the task at once, naming the path and the node, when this node cannot write the seed's folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write {folder} on node {socket.gethostname()} ({exc.strerror or exc}): "
                          "put --output-dir on storage every node sees (a shared file system)") from None


def _task(run, cfg: dict, threads: int) -> dict:
    """One seed on a Ray worker (``run``: the sweep's one-seed function): resume from its last checkpoint if an
    earlier attempt left one."""
    import torch

    from mrpc_check.pipeline.checkpoint import latest_checkpoint
    from mrpc_check.pipeline.report import pair_problem

    torch.set_num_threads(threads)
    os.environ["TQDM_DISABLE"] = "1"
    folder = Path(cfg["output_dir"])
    _writable(folder)
    finished = (folder / "report.json").is_file() and pair_problem(folder) is None
    if not finished and latest_checkpoint(folder) is not None:
        cfg = {**cfg, "resume": True, "overwrite": False}  # a retry after the worker died: go on from the checkpoint
    started = time.perf_counter()
    entry = run(cfg)
    return {"seed": cfg["seed"], "entry": entry, "error": None, "node": socket.gethostname(),
            "minutes": (time.perf_counter() - started) / 60}


@contextlib.contextmanager
def session(options):
    """One Ray connection for everything inside: a grid's points all go to the same instance.

    Connects (or starts the local instance) unless Ray is already initialised, and shuts down at the
    end only what it started; :func:`run_all` inside reuses the connection.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, options)
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray, options) -> None:
    if options.address:
        _token_auth_like_ray_start()
    env = {k: os.environ[k] for k in _FORWARDED if k in os.environ}
    kwargs = {"address": options.address} if options.address else {"num_cpus": os.cpu_count(), "include_dashboard": False}
    try:
        context = ray.init(runtime_env={"env_vars": env}, log_to_driver=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {options.address!r} ({str(exc).splitlines()[0][:160]}): "
                          "start it with `ray start --head`, or leave --address out for a local instance") from None
    url = getattr(context, "dashboard_url", None)
    if url and options.progress:
        print(f"Ray dashboard: http://{url}")


def run_all(run, configs: list, options) -> Iterator[dict]:
    """Each config's outcome ``{"seed", "entry", "error", "node", "minutes"}``, in the order they finish.

    ``run`` is the sweep's one-seed function, a module-level one: Ray ships it by name and workers import it.
    Inside :func:`session` (a grid) it uses that connection; alone, it opens and closes its own.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, options)
    threads = max(1, int(options.cpus_per_run))
    from mrpc_check.errors import Preempted

    # Retried: a worker that died, and a run stopped by SIGTERM (a preempted node: it checkpointed and
    # raised Preempted). Any other error the run raises would raise again: not retried.
    remote = ray.remote(num_cpus=options.cpus_per_run, num_gpus=options.gpus_per_run, max_retries=options.max_retries,
                        retry_exceptions=[Preempted])(_task)
    pending = {remote.remote(run, cfg, threads): cfg for cfg in configs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cfg = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:  # the run raised: not retried
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                text = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
                yield {"seed": cfg["seed"], "entry": None, "error": f"{type(cause).__name__}: {text}"[:400],
                       "node": None, "minutes": None}
            except ray.exceptions.RayError as exc:  # the worker died on every attempt
                yield {"seed": cfg["seed"], "entry": None, "node": None, "minutes": None,
                       "error": f"{type(exc).__name__} after {options.max_retries} retries: "
                                f"{(str(exc).strip().splitlines() or [''])[0][:300]}"}
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
