"""Stage 8: what a run leaves behind: report.json, curves.png, model/.

Every file is written to a temporary name in the same folder and renamed into
place, so a kill mid-write leaves the previous file whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from mrpc_check.errors import ConfigError

REPORT_NAME = "report.json"
CURVES_NAME = "curves.png"
MODEL_DIR = "model"


def prepare_output_dir(path: str, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``path`` and prove it writable; refuse to clobber a finished run.

    Raises:
        ConfigError: the folder holds a finished run (and ``overwrite`` is off), is not
            writable, or ``resume`` is asked with no checkpoint to resume from.
    """
    from mrpc_check.pipeline.checkpoint import latest_checkpoint

    out = Path(path).expanduser()
    mixed = pair_problem(out)
    if mixed and not overwrite and not (resume and latest_checkpoint(out) is not None):
        raise ConfigError(mixed)  # never reported as finished, nor resumed from without its checkpoints
    if (out / REPORT_NAME).exists() and not overwrite and not mixed:
        if resume:
            raise ConfigError(f"{str(out)!r} holds a finished run ({REPORT_NAME}): nothing to resume; pass another --output-dir")
        raise ConfigError(f"{str(out)!r} already holds a finished run ({REPORT_NAME}): pass --overwrite or another --output-dir")
    if resume and latest_checkpoint(out) is None:
        raise ConfigError(f"--resume: no checkpoint in {str(out)!r}/checkpoints: drop --resume to start afresh")
    return ensure_writable(out)


def ensure_writable(out: Path) -> Path:
    """Create ``out`` and prove it writable.

    Raises:
        ConfigError: it cannot be created or written to.
    """
    out = Path(out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"output folder {str(out)!r} is not writable ({exc.strerror}): pass another --output-dir") from exc
    return out


LOCK_NAME = ".mrpc-check.lock"
OWNER_NAME = ".mrpc-check.owner"


@contextlib.contextmanager
def output_lock(out: Path):
    """One run per output folder, with ``filelock`` (an OS lock: it dies with its process, so a
    lock file left by a killed run never blocks the next one).

    Raises:
        ConfigError: another live run holds the folder; the message names its process.
    """
    import datetime
    import socket
    import sys

    from filelock import FileLock, Timeout

    lock = FileLock(str(out / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = json.loads((out / OWNER_NAME).read_text())
            who = f"pid {owner['pid']} on {owner['host']}, started {owner['started']}: {owner['command']}"
        except (OSError, ValueError, KeyError):
            who = "a process that has not yet said who it is"
        raise ConfigError(f"{str(out)!r} is in use by another mrpc-check run ({who}): wait for it to end, "
                          "or pass another --output-dir") from None
    owner = out / OWNER_NAME
    try:
        atomic_write_text(owner, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)


def remove_if_empty(out: Path) -> None:
    """Remove a folder this run created when it holds nothing a user could want (a run that failed early)."""
    try:
        if not any(p.name not in (LOCK_NAME, OWNER_NAME) for p in out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (atomic on POSIX)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


RUN_ID_NAME = "mrpc_run.json"  # inside model/: the run that wrote it; report.json's "run_id" names the same run
FAULT_ENV = "MRPC_FAULT_AFTER"  # a test hook: stop the process dead (os._exit) after a named write (the kill tests)


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os._exit(137)  # as SIGKILL would: no cleanup, no finally


def save_outputs(model, tokenizer, report: dict, out: Path) -> dict:
    """``out/model`` and then ``out/report.json`` that names it: one run's pair, whatever stops the process.

    Two renames are never one: the report is written last (the commit) and carries the run id that
    ``model/mrpc_run.json`` carries, so a run stopped between the two leaves a folder that every reader
    recognises as mixed (:func:`pair_problem`) instead of one run's scores beside another run's weights.
    Returns the report as written (with its ``run_id``).
    """
    import uuid

    report = {**report, "run_id": uuid.uuid4().hex}
    save_model_atomic(model, tokenizer, out, report["run_id"])
    _fault("model")
    write_json(out / REPORT_NAME, report)
    _fault("report")
    return report


def pair_problem(out: Path) -> Optional[str]:
    """Why ``out``'s model/ and report.json are not one run's pair (one line), or None when they are.

    None also when either is absent or carries no run id (a folder written before run ids, or by hand).
    """
    out = Path(out)
    model_id, report_path = out / MODEL_DIR / RUN_ID_NAME, out / REPORT_NAME
    if not model_id.is_file() or not report_path.is_file():
        return None
    try:
        ours = json.loads(model_id.read_text(encoding="utf-8"))["run_id"]
        theirs = json.loads(report_path.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{str(out)!r}: cannot read which run wrote model/ and {REPORT_NAME} ({type(exc).__name__}): rerun with --overwrite"
    if theirs is not None and theirs != ours:
        return (f"{str(out)!r}: model/ and {REPORT_NAME} come from different runs (a run was stopped between writing "
                "them): rerun with --overwrite, or with --resume while its checkpoints remain")
    return None


def read_report(out: Path, paired: bool = True) -> dict:
    """``out/report.json`` of a finished run, checked (``paired``) to be one run's pair with ``out/model``.

    Raises:
        ConfigError: unreadable (truncated, hand-edited), not a run's report, or beside another run's model: one line.
    """
    path = Path(out) / REPORT_NAME
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
            raise ValueError("no 'metrics' section")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{str(path)!r} is not a readable run report ({type(exc).__name__}: {str(exc)[:80]}): rerun that run "
                          "with --overwrite") from None
    if paired:
        refuse_mixed(out)
    return report


def refuse_mixed(out: Path) -> None:
    """Raises ConfigError (one line) when ``out`` holds one run's model beside another's report."""
    problem = pair_problem(out)
    if problem:
        raise ConfigError(problem)


def save_model_atomic(model, tokenizer, out: Path, run_id: Optional[str] = None) -> Path:
    """``save_pretrained`` (safetensors) into a temporary folder, then swap it in as ``out/model``."""
    final = out / MODEL_DIR
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{MODEL_DIR}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if run_id is not None:
            (tmp / RUN_ID_NAME).write_text(json.dumps({"run_id": run_id}) + "\n", encoding="utf-8")
        _fault("model-saved")
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=out, prefix=f".{MODEL_DIR}.old."))
            os.replace(final, old / MODEL_DIR)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def versions() -> dict:
    """Versions of the stack a result depends on."""
    import accelerate
    import datasets
    import evaluate
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "evaluate": evaluate.__version__,
        "accelerate": accelerate.__version__,
    }


def provenance(command: Optional[list] = None) -> dict:
    """When, how and from which code a result was produced: what a reader needs a month later."""
    import datetime
    import shlex
    import subprocess
    import sys

    from mrpc_check import __version__

    commit = None
    try:  # a source checkout says which commit ran; an installed wheel has no git, and that is fine
        done = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=False)
        commit = (done.stdout.strip() or None) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([str(c) for c in command] if command else [Path(sys.argv[0]).name, *sys.argv[1:]]),
        "mrpc_check": __version__,
        "git_commit": commit,
    }


def normalised_paths(cfg_dict: dict) -> dict:
    """The config with local paths absolute and free of ``..``, so a report still points at its inputs later."""
    out = dict(cfg_dict)
    for key in ("data", "model", "output_dir"):
        value = out.get(key)
        if isinstance(value, str) and value != "hub" and (key == "output_dir" or Path(value).expanduser().exists()):
            out[key] = str(Path(value).expanduser().resolve())
    return out


def device_description(device_type: str) -> dict:
    import torch

    info = {"type": device_type, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if device_type == "cuda" and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(0)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def split_scores(metrics: dict, predictions, labels, split: str) -> tuple[dict, Optional[str]]:
    """``metrics.<split>``, ``<split>_baseline`` and ``<split>_analysis`` entries for one scored split,
    and why the split's predictions are degenerate (None when they are not)."""
    from mrpc_check.pipeline.stats import analyse

    analysis = analyse(predictions, labels, metrics)
    baseline = analysis.pop("baseline")  # always answering the majority class, from the loaded labels
    degenerate = analysis.pop("degenerate")  # reported once, at the top level, for validation
    return {split: metrics, f"{split}_baseline": baseline, f"{split}_analysis": analysis}, degenerate


def build_report(cfg_dict: dict, checkpoint: str, device_type: str, result, validation_labels=None, test=None,
                 command: Optional[list] = None) -> dict:
    """The run's report: config, versions, device, validation metrics with their majority baseline,
    Matthews correlation, bootstrap interval and confusion matrix, a degenerate-run flag with its
    reason, test metrics when the data has a labelled test split, throughput, history.

    Args:
        test: ``{"metrics", "predictions", "labels"}`` of the labelled test split, or None.
        command: the command line that ran (default: this process's arguments).
    """
    from mrpc_check.pipeline.stats import majority_baseline

    runtime = max(result.runtime_s, 1e-9)
    metrics = {"validation": result.final_metrics, "validation_per_epoch": result.epochs,
               "validation_baseline": majority_baseline(validation_labels) if validation_labels is not None else None}
    reason = None
    if validation_labels is not None and result.eval_predictions:
        scored, reason = split_scores(result.final_metrics, result.eval_predictions, validation_labels, "validation")
        metrics.update(scored)
    if test is not None:
        metrics.update(split_scores(test["metrics"], test["predictions"], test["labels"], "test")[0])
        metrics["validation_test_gap"] = {k: result.final_metrics[k] - test["metrics"][k] for k in ("accuracy", "f1")}
    return {
        "config": normalised_paths(cfg_dict),
        "checkpoint": checkpoint,
        "run": provenance(command),
        "versions": versions(),
        "device": device_description(device_type),
        "metrics": metrics,
        "degenerate": {"flag": reason is not None, "reason": reason},
        "train": {
            "runtime_s": result.runtime_s,
            "samples": result.train_samples,
            "samples_per_s": result.train_samples / runtime,
            "real_tokens": result.real_tokens,
            "real_tokens_per_s": result.real_tokens / runtime,
            "padding_fraction": (1 - result.real_tokens / result.padded_tokens) if result.padded_tokens else None,
            "optimizer_steps": result.optimizer_steps,
            "final_lr": result.final_lr,
        },
        "history": {"loss": result.step_losses, "lr": result.step_lrs},
        "model_dir": MODEL_DIR,
    }


def draw_curves(report: dict, path: Path) -> Optional[str]:
    """Loss and lr per step, validation accuracy and F1 per epoch, as a PNG.

    Returns:
        None when drawn, else why not (matplotlib is an optional extra).
    """
    plt = pyplot()
    if plt is None:
        return f"{path.name} skipped: matplotlib is not installed (pip install 'mrpc-check[plot]')"
    loss, lr = report["history"]["loss"], report["history"]["lr"]
    epochs = report["metrics"]["validation_per_epoch"]
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(range(1, len(loss) + 1), loss, color="tab:blue", linewidth=0.8)
    ax_loss.set_xlabel("logged step")
    ax_loss.set_ylabel("training loss", color="tab:blue")
    ax_lr = ax_loss.twinx()
    ax_lr.plot(range(1, len(lr) + 1), lr, color="tab:orange")
    ax_lr.set_ylabel("learning rate", color="tab:orange")
    ax_loss.set_title("training")
    xs = [e["epoch"] for e in epochs]
    ax_eval.plot(xs, [e["accuracy"] for e in epochs], marker="o", label="accuracy")
    ax_eval.plot(xs, [e["f1"] for e in epochs], marker="s", label="F1 (equivalent)")
    ax_eval.set_xlabel("epoch")
    ax_eval.set_xticks(xs)
    ax_eval.set_title("validation")
    ax_eval.legend(loc="lower right")
    title = f"{report['config']['model']} on MRPC, {report['config']['loop']} loop"
    degenerate = report.get("degenerate") or {}
    if degenerate.get("flag"):
        title += f"\nDEGENERATE RUN: {degenerate['reason']}"
    fig.suptitle(title, color="tab:red" if degenerate.get("flag") else "black")
    save_figure(fig, path)
    return None


def pyplot():
    """matplotlib's pyplot on a headless backend, or None when the optional extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on servers and CI
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: Path) -> None:
    """Lay out, write atomically (temporary name, then rename) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
