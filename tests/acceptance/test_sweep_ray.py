"""Sweeps on a Ray cluster: a real local cluster (`ray start --head` in a separate process), not a mock.

Integration tier, and only where Ray is installed (the `ray` tox environment): each test starts
Ray workers, which import torch and transformers (seconds each).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mrpc_check.acceptance import sweep
from mrpc_check.acceptance.floors import Floors
from mrpc_check.pipeline.config import make_config

# In one process only: the file starts a head and kills its Ray workers; under pytest-xdist a worker running
# it beside the others crashed (seen twice, 2026-12-06). tox -e ray and .ci/run name the file, which runs it
# in one process. It touches only the cluster it starts: a user's own Ray processes on the machine live on.
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif("PYTEST_XDIST_WORKER" in os.environ,
                                 reason="starts, kills and stops a Ray cluster: run it in one process "
                                        "(tox -e ray, or pytest tests/acceptance/test_sweep_ray.py --integration)")]

FLOORS = Floors(min_f1=0.9, min_accuracy=0.9)
# What a run's entry holds that depends on when and where it ran, not on what it computed.
WHERE_AND_WHEN = ("train_s", "report")  # (sweep.json's "models" paths differ too: not compared)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1 with 2 CPUs in its own process (``ray start --block``): (address, its process).

    Blocking, the head's raylet and workers are that process's descendants, so the tests kill their own
    workers only, and SIGTERM to it stops this cluster alone (``ray stop`` would stop every Ray process
    on the machine, a user's own cluster included).
    """
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'mrpc_check[ray]' (the tox env 'ray' has it)")
    import psutil

    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(os.path.join(temp, "head.log"), "w+")
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", "2", "--temp-dir", temp, "--include-dashboard", "false", "--disable-usage-stats"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        # The head writes its address file once its processes are up, before it starts blocking.
        deadline = time.monotonic() + 180
        while not os.path.exists(os.path.join(temp, "ray_current_cluster")):
            if head.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"ray start --head did not come up: {log.read()[-2000:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", psutil.Process(head.pid)
    finally:
        family = psutil.Process(head.pid).children(recursive=True) if head.poll() is None else []
        head.terminate()  # the blocking head stops its raylet, GCS and workers on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=30)
        for proc in family:  # whatever outlived it (a worker mid-task) goes too: ours, by ancestry
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_address(ray_head):
    return ray_head[0]


@pytest.fixture
def bystander():
    """A process named like a Ray task of another cluster on the machine: the tests must leave it alone."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "ray::_task_of_another_cluster"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def tiny_cfg(tiny_model_dir, raw_dir):
    return make_config(model=tiny_model_dir, data=raw_dir, epochs=1, max_train_samples=16)


def _kill_at_first_checkpoint(head, seed_dir: Path, how: str, killed: list) -> None:
    """Once ``seed_dir`` holds a checkpoint, SIGKILL (``kill``) or SIGTERM (``terminate``) every Ray task
    running under ``head`` (the test's own cluster: another Ray on the machine is left alone)."""
    import psutil

    from mrpc_check.pipeline.checkpoint import checkpoints_in

    deadline = time.time() + 300
    while time.time() < deadline and not killed:
        if seed_dir.is_dir() and checkpoints_in(seed_dir):
            for proc in head.children(recursive=True):
                try:
                    if any("ray::_task" in part for part in proc.cmdline()):
                        getattr(proc, how)()
                        killed.append(proc.pid)
                except psutil.NoSuchProcess:
                    pass
            return
        time.sleep(0.02)


def _computed(run: dict) -> dict:
    return {k: v for k, v in run.items() if k not in WHERE_AND_WHEN}


def test_a_sweep_through_the_cluster_equals_the_local_one(tmp_path, tiny_cfg, tiny_model_dir, raw_dir, ray_address):
    args = ["--model", tiny_model_dir, "--data", raw_dir, "--epochs", "1", "--max-train-samples", "16",
            "--min-f1", "0.9", "--min-accuracy", "0.9"]
    done = subprocess.run([sys.executable, "-m", "mrpc_check", "sweep", "--seeds", "1,2", "--engine", "ray", "--address", ray_address,
                           "--output-dir", str(tmp_path / "ray"), *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    # One line per finished seed on the driver: scores, node, minutes and the running median.
    finished = [line for line in done.stdout.splitlines() if line.startswith("seed ") and "node " in line]
    assert len(finished) == 2 and all("median f1" in line and " min " in line for line in finished), done.stdout
    local = sweep.run_sweep(tiny_cfg, [1, 2], tmp_path / "local", FLOORS, progress=False)
    on_ray = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    assert [_computed(r) for r in on_ray["runs"]] == [_computed(r) for r in local["runs"]]
    assert on_ray["summary"] == local["summary"] and on_ray["failed"] == local["failed"] == []
    assert sorted(on_ray["models"]) == sorted(local["models"]) == ["1", "2"]
    # A tiny model's scores hardly move with the recipe: the training itself must be the same too, step by step
    # (up to float reassociation: the Ray task runs on its own thread count).
    for seed in (1, 2):
        ray_loss, local_loss = (json.loads((tmp_path / where / f"seed-{seed}" / "report.json").read_text())["history"]["loss"]
                                for where in ("ray", "local"))
        assert ray_loss == pytest.approx(local_loss, rel=1e-4) and len(ray_loss) == len(local_loss) > 0
    assert (done.returncode == 0) == local["summary"]["passed"]


def test_two_sweeps_on_one_folder_through_the_cluster_keep_every_result(tmp_path, tiny_model_dir, raw_dir, ray_address):
    """seed 1 and seed 2 started together on one --output-dir, both through the cluster: sweep.json holds both."""
    args = ["--model", tiny_model_dir, "--data", raw_dir, "--epochs", "1", "--max-train-samples", "16", "--min-f1", "0.9",
            "--min-accuracy", "0.9", "--engine", "ray", "--address", ray_address, "--output-dir", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    sweeps = [subprocess.Popen([sys.executable, "-m", "mrpc_check", "sweep", "--seeds", seed, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env) for seed in ("1", "2")]
    outputs = [p.communicate(timeout=600) for p in sweeps]
    for p, (_, err) in zip(sweeps, outputs):
        assert p.returncode in (0, 1), err[-2000:]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert sorted(r["seed"] for r in saved["runs"]) == [1, 2] and saved["summary"]["runs"] == 2 and saved["failed"] == []
    assert any("another sweep is running on" in out for out, _ in outputs), outputs


@pytest.mark.parametrize("how", ["kill", "terminate"])
def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(tmp_path, tiny_cfg, ray_head, bystander, how):
    """SIGKILL (the OOM killer, a lost node) and SIGTERM (preemption: the run checkpoints and stops) alike;
    a Ray task of another cluster on the machine (a bystander named like one) is not touched."""
    ray_address, head = ray_head
    cfg = make_config(tiny_cfg, epochs=30, batch_size=4, checkpoint_every="5")  # 120 optimizer steps
    seed_dir = tmp_path / "ray" / "seed-1"
    killed = []
    killer = threading.Thread(target=_kill_at_first_checkpoint, args=(head, seed_dir, how, killed))
    killer.start()
    options = sweep.EngineOptions(engine="ray", address=ray_address, max_retries=2, progress=False)
    on_ray = sweep.run_sweep(cfg, [1], tmp_path / "ray", FLOORS, options=options)
    killer.join()
    assert killed, "the task finished before its first checkpoint: nothing was killed"
    report = json.loads((seed_dir / "report.json").read_text())
    assert report["config"]["resume"], "the retry started over instead of resuming"
    uninterrupted = sweep.run_sweep(cfg, [1], tmp_path / "local", FLOORS, progress=False)
    assert [_computed(r) for r in on_ray["runs"]] == [_computed(r) for r in uninterrupted["runs"]]
    assert on_ray["failed"] == []
    assert bystander.poll() is None, "the test killed a process outside its own cluster"


def test_a_seed_that_fails_for_good_is_reported_and_fails_the_verdict(tmp_path, tiny_cfg, ray_address, capsys):
    out = tmp_path / "ray"
    out.mkdir()
    (out / "seed-2").write_text("a file where the seed's folder goes")  # the worker cannot write there
    options = sweep.EngineOptions(engine="ray", address=ray_address, max_retries=1)
    result = sweep.run_sweep(tiny_cfg, [1, 2], out, FLOORS, options=options)
    assert [r["seed"] for r in result["runs"]] == [1]
    (failed,) = result["failed"]
    assert failed["seed"] == 2 and "cannot write" in failed["error"] and "seed-2" in failed["error"] and "on node" in failed["error"]
    summary = result["summary"]
    assert not summary["passed"] and summary["failures"][0] == "seed 2 failed for good: the spread rests on 1 of 2 seeds"
    assert json.loads((out / "sweep.json").read_text())["failed"] == result["failed"]
    assert "seed 2: FAILED" in capsys.readouterr().out
    text = sweep.format_summary(result)
    assert "FAILED" in text and "rests on 1 of 2 seeds" in text


def test_a_grid_connects_once_and_a_killed_worker_still_resumes(tmp_path, tiny_cfg, ray_head, monkeypatch):
    """Every grid point's seeds go to one Ray connection (ray.init counted), and a worker killed during the grid's
    second point is retried from its checkpoint there, as in a single sweep."""
    import ray

    ray_address, head = ray_head
    inits = []
    real_init = ray.init

    def counted(*args, **kwargs):
        inits.append(kwargs.get("address"))
        return real_init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", counted)
    cfg = make_config(tiny_cfg, epochs=30, batch_size=4, checkpoint_every="5")  # 120 optimizer steps a seed
    points = [{"lr": 1e-4}, {"lr": 3e-4}]
    second = tmp_path / "grid" / sweep.point_name(points[1]) / "seed-1"
    killed = []
    killer = threading.Thread(target=_kill_at_first_checkpoint, args=(head, second, "kill", killed))
    killer.start()
    options = sweep.EngineOptions(engine="ray", address=ray_address, max_retries=2, progress=False)
    grid = sweep.run_grid(cfg, points, [1], tmp_path / "grid", FLOORS, options=options)
    killer.join()
    assert inits == [ray_address], inits  # one connection for both points
    assert not ray.is_initialized()  # and closed at the end: the grid opened it
    assert killed and json.loads((second / "report.json").read_text())["config"]["resume"]
    assert [len(p["summary"] and [1]) for p in grid["points"]] == [1, 1] and all(p["failed"] == [] for p in grid["points"])


def test_a_users_adapter_sweeps_on_the_cluster(tmp_path, tiny_cfg, ray_address):
    """`sweep --loop file.py:adapter --engine ray`: each Ray task imports the user's file and writes the same report."""
    adapter = f"{Path(__file__).resolve().parents[2] / 'examples' / 'my_loop.py'}:adapter"
    cfg = make_config(tiny_cfg, loop=adapter, batch_size=8)
    options = sweep.EngineOptions(engine="ray", address=ray_address, progress=False)
    result = sweep.run_sweep(cfg, [1, 2], tmp_path / "ray", FLOORS, options=options)
    assert [r["seed"] for r in result["runs"]] == [1, 2] and result["failed"] == []
    for seed in (1, 2):
        report = json.loads((tmp_path / "ray" / f"seed-{seed}" / "report.json").read_text())
        assert report["loop"]["adapter"] == adapter and report["config"]["seed"] == seed
