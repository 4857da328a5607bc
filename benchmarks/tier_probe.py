"""A pytest plugin for benchmarks/quick_tier.py: where each process of a tier run spends its time.

Loaded with ``-p tier_probe`` (this folder on ``PYTHONPATH``) and ``TIER_PROBE_DIR`` naming a folder;
``TIER_PROBE_T0`` is the wall-clock second the command started. Each process (the xdist controller
and every worker) writes one JSON file there at the end: when it finished collecting, when its first
test started and its last ended, the seconds its tests took, and the seconds the cyclic garbage
collector ran (``gc.callbacks``), by generation. It measures; it changes nothing.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

_T0 = float(os.environ.get("TIER_PROBE_T0", time.time()))
_STATE = {"configured": None, "collected": None, "first": None, "last": None, "busy": 0.0, "tests": 0, "gc_s": 0.0, "gc_runs": [0, 0, 0], "gc_s_by_generation": [0.0, 0.0, 0.0]}
_open: dict = {}


def _gc_timer(phase, info):
    if phase == "start":
        _open["gc"] = time.perf_counter()
    elif "gc" in _open:
        took = time.perf_counter() - _open.pop("gc")
        _STATE["gc_s"] += took
        _STATE["gc_s_by_generation"][info["generation"]] += took
        _STATE["gc_runs"][info["generation"]] += 1


gc.callbacks.append(_gc_timer)


def pytest_configure(config):
    # pytest-xdist's controller runs no test but hears every worker's start and finish: it times none.
    workers = getattr(config.option, "numprocesses", None)
    _open["controller"] = workers not in (None, 0, "0") and "PYTEST_XDIST_WORKER" not in os.environ
    _STATE["configured"] = time.time() - _T0


def pytest_collection_finish(session):
    _STATE["collected"] = time.time() - _T0


def pytest_runtest_logstart(nodeid, location):
    if _open.get("controller"):
        return
    now = time.time() - _T0
    _open[nodeid] = now
    if _STATE["first"] is None:
        _STATE["first"] = now


def pytest_runtest_logfinish(nodeid, location):
    started = _open.pop(nodeid, None)
    if started is not None:
        now = time.time() - _T0
        _STATE["busy"] += now - started
        _STATE["tests"] += 1
        _STATE["last"] = now


def pytest_sessionfinish(session):
    folder = os.environ.get("TIER_PROBE_DIR")
    if folder:
        name = os.environ.get("PYTEST_XDIST_WORKER", "controller")
        (Path(folder) / f"{name}.json").write_text(json.dumps({"process": name, **_STATE}))
