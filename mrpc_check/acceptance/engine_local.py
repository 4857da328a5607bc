"""The local engine: seeds in this process, or in a pool of processes on this machine (the default).

One of the sweep's engines (see :func:`mrpc_check.acceptance.sweep.engine`): ``run_all`` takes the
runs and yields each one's outcome as it finishes. Nothing but the sweep imports this module.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Callable, Iterator


@contextlib.contextmanager
def session(options):
    """Nothing to connect to: the engines' shared seam (a grid opens one session around all its points)."""
    yield


def _worker_init(threads: int, devices) -> None:
    """Pool worker set-up: its share of the cores and, on a multi-GPU machine, one GPU of its own."""
    import torch

    torch.set_num_threads(threads)
    os.environ["TQDM_DISABLE"] = "1"  # one progress bar, the sweep's, not one per worker
    if devices is not None:
        # Each worker takes the next GPU index from the queue before CUDA initialises.
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())


def _gpu_queue(ctx, jobs: int):
    """A queue of GPU indices for ``jobs`` workers (round robin), or None without CUDA."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return None
    queue = ctx.Queue()
    for i in range(jobs):
        queue.put(i % count)
    return queue


def _timed(run: Callable[[dict], dict], cfg: dict) -> dict:
    started = time.perf_counter()
    entry = run(cfg)
    return {"seed": cfg["seed"], "entry": entry, "error": None, "node": socket.gethostname(),
            "minutes": (time.perf_counter() - started) / 60}


def run_all(run: Callable[[dict], dict], configs: list, options) -> Iterator[dict]:
    """Each config's outcome ``{"seed", "entry", "error", "node", "minutes"}``, in the order they finish.

    A run that raises stops the sweep (this machine's error is the user's to see at once);
    finished seeds are already on disk.
    """
    jobs = options.jobs
    if jobs == 1:
        for cfg in configs:
            yield _timed(run, cfg)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=min(jobs, len(configs)), mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, _gpu_queue(ctx, jobs))) as pool:
        futures = [pool.submit(_timed, run, cfg) for cfg in configs]
        for future in as_completed(futures):
            yield future.result()
