"""Seed sweeps: one recipe over several seeds, judged by the spread, not by one lucky draw.

Fine-tuning BERT-style models on MRPC is unstable across seeds: some runs collapse to the
majority class and F1 spreads over several points (Dodge et al. 2020; Mosbach et al. 2021).
A sweep trains ``OUTPUT/seed-<s>/`` per seed with :func:`mrpc_check.pipeline.run.run_training`,
then reports median, quartiles, min and max of validation (and, when labelled, test) F1 and
accuracy, the rate of degenerate runs, and a verdict by a printed rule.

A finished seed (its ``report.json`` holds the same recipe) is read back, never redone, so a
killed sweep resumes where it stopped; an unfinished seed resumes from its last checkpoint
(written at the stop on SIGTERM/SIGINT, or periodically with ``--checkpoint-every``). Seeds are
independent jobs, handed to an engine through one seam (:func:`engine`): ``local`` runs them in
this process, or with ``jobs > 1`` in the standard library's process pool, each process with
``cores / jobs`` torch threads and, on a machine with several GPUs, its own GPU
(:mod:`~mrpc_check.acceptance.engine_local`); ``ray`` makes each one a Ray task on a cluster
(:mod:`~mrpc_check.acceptance.engine_ray`, the optional extra ``mrpc_check[ray]``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

from mrpc_check.pipeline.config import TrainConfig
from mrpc_check.errors import ConfigError
from mrpc_check.acceptance.floors import Floors, refuse_at_baseline
from mrpc_check.acceptance.summary import (PER_RUN, RULES, SWEEP_JSON, draw_sweep, format_summary,  # noqa: F401  (the sweep's API)
                                           progress_line, read_summary, rule_text, run_entry, same_recipe, summarise,
                                           RUNNING_NAME, write_summary)

SWEEP_PLOT = "sweep.png"
GRID_JSON = "grid.json"


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"``, ``"1-5"`` or a mix (``"1-3,10"``) -> distinct seeds in the order given.

    Raises:
        ConfigError: empty, not integers, a descending range, or a seed given twice.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            bounds = [int(x) for x in part.split("-", 1)]
        except ValueError:
            raise ConfigError(f"--seeds takes integers and ranges such as 1,2,3 or 1-5, got {text!r}") from None
        if len(bounds) == 2 and bounds[1] < bounds[0]:
            raise ConfigError(f"--seeds: range {part!r} runs backwards: write {bounds[1]}-{bounds[0]}")
        seeds.extend(range(bounds[0], bounds[-1] + 1))
    if not seeds:
        raise ConfigError(f"--seeds names no seed in {text!r}: pass e.g. --seeds 1,2,3,4,5")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds: seed(s) {', '.join(map(str, repeated))} given twice; each seed is one run")
    return seeds


def parse_grid(specs: Sequence[str]) -> list[dict]:
    """The points of a recipe grid: ``["lr=2e-5,5e-5", "model=A,B"]`` -> every combination, as config overrides.

    Each spec is ``KEY=V1,V2,...`` over one :class:`TrainConfig` setting (dashes or underscores),
    its values read as that setting's type (``none`` for an optional one); the points are the
    product of the axes, in the order given.
    """
    import difflib
    import itertools

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    axes: list[tuple[str, list]] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not key or not values:
            raise ConfigError(f"--grid {spec!r}: write KEY=V1,V2 (e.g. --grid lr=2e-5,5e-5)")
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            raise ConfigError(f"--grid {key!r} is not a recipe setting" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + "; see mrpc-check train --help")
        if key in PER_RUN or key == "data":
            raise ConfigError(f"--grid {key!r}: a sweep sets it per run (or it changes the data, not the recipe); grid recipe settings only")
        if key in dict(axes):
            raise ConfigError(f"--grid {key!r} given twice: put all its values in one --grid {key}=V1,V2")
        hint = str(fields[key].type)
        axes.append((key, [_typed(key, v, hint) for v in values]))
        if len(set(map(repr, axes[-1][1]))) != len(values):
            raise ConfigError(f"--grid {key!r}: a value is given twice")
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def _typed(key: str, text: str, hint: str):
    """``text`` as a value of a config field whose annotation reads ``hint``."""
    if "Optional" in hint and text.lower() == "none":
        return None
    kind = hint.replace("Optional[", "").rstrip("]")
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        return {"int": int, "float": float, "str": str}[kind](text)
    except (KeyError, ValueError):
        raise ConfigError(f"--grid {key}: {text!r} is not a {kind}") from None


def point_name(point: dict) -> str:
    """A grid point's folder name: ``lr=2e-05,batch_size=16`` (path separators made safe)."""
    text = ",".join(f"{k}={v}" for k, v in point.items())
    return "".join(c if c.isalnum() or c in "=,.-_+" else "_" for c in text)


def run_grid(cfg: TrainConfig, points: list[dict], seeds: Sequence[int], out, floors: Optional[Floors] = None,
             rule: str = "median", overwrite: bool = False, options: Optional["EngineOptions"] = None) -> dict:
    """One sweep per grid point, under ``out/<point>/``; ``out/grid.json`` holds every point's verdict.

    Every point's runs are configs checked before the first run starts, so a bad value costs
    nothing. Returns ``{"points": [{"point", "folder", "summary"}], "passed"}``.
    """
    from mrpc_check.pipeline.config import make_config
    from mrpc_check.pipeline.report import atomic_write_text

    out = Path(out).expanduser()
    configs = [make_config(cfg, **point) for point in points]  # ConfigError before any run
    options = options or EngineOptions()
    results = []
    with engine(options.engine).session(options):  # one connection (one Ray instance) for every point
        for point, point_cfg in zip(points, configs):
            folder = out / point_name(point)
            result = run_sweep(point_cfg, seeds, folder, floors, rule, overwrite=overwrite, options=options)
            results.append({"point": point, "folder": str(folder), "summary": result["summary"], "failed": result["failed"]})
            grid = {"points": results, "passed": all(r["summary"]["passed"] for r in results),
                    "complete": len(results) == len(points)}
            atomic_write_text(out / GRID_JSON, json.dumps(grid, indent=2) + "\n")
    return grid


def format_grid(grid: dict) -> str:
    """One line per grid point: its settings, median F1 and accuracy, and its verdict."""
    lines = [f"{'point':<40}  {'median F1':>9}  {'median acc':>10}  verdict"]
    for r in grid["points"]:
        s = r["summary"]
        f1 = s.get("validation", {}).get("f1", {}).get("median")
        acc = s.get("validation", {}).get("accuracy", {}).get("median")
        lines.append(f"{point_name(r['point']):<40}  {f1 if f1 is None else f'{f1:.4f}':>9}  {acc if acc is None else f'{acc:.4f}':>10}  "
                     + ("PASS" if s["passed"] else "FAIL: " + "; ".join(s["failures"])))
    return "\n".join(lines)


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def _plan(cfg: TrainConfig, seeds: Sequence[int], out: Path, overwrite: bool) -> tuple[list[dict], list[TrainConfig]]:
    """Finished runs to read back, and configs of the runs still to do."""
    from mrpc_check.acceptance.user_loop import resumable_from
    from mrpc_check.pipeline.checkpoint import latest_checkpoint
    from mrpc_check.pipeline.report import pair_problem

    done, todo = [], []
    for seed in seeds:
        folder = seed_dir(out, seed)
        run_cfg = dataclasses.replace(cfg, seed=seed, output_dir=str(folder), overwrite=False, resume=False)
        report_path = folder / "report.json"
        if report_path.is_file() and pair_problem(folder):
            # A run stopped between writing model/ and report.json: not finished. It goes on from its checkpoints
            # (which are cleared only once both are written), or is redone.
            todo.append(dataclasses.replace(run_cfg, resume=True) if latest_checkpoint(folder) is not None
                        else dataclasses.replace(run_cfg, overwrite=True))
            continue
        if report_path.is_file() and not overwrite:
            try:
                report = json.loads(report_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                report = None
            if report is not None and same_recipe(report.get("config", {}), run_cfg.to_dict()):
                done.append(run_entry(report, seed, folder))
                continue
            raise ConfigError(f"{str(folder)!r} holds a run of another recipe (or an unreadable report): "
                              "pass --overwrite to redo it, or another --output-dir")
        if report_path.is_file():
            run_cfg = dataclasses.replace(run_cfg, overwrite=True)
        elif latest_checkpoint(folder) is not None or resumable_from(run_cfg):
            # A seed stopped by SIGTERM/SIGINT (always checkpointed) or killed after a periodic checkpoint goes on from it;
            # a resumable adapter's seed goes on from its own checkpoints.
            run_cfg = dataclasses.replace(run_cfg, resume=True)
        todo.append(run_cfg)
    return done, todo


def _one_run(cfg_dict: dict) -> dict:
    """One seed, start to end (in this process or a pool worker)."""
    from mrpc_check.acceptance.user_loop import train_any
    from mrpc_check.pipeline.config import make_config
    from mrpc_check.testing import reset_accelerate

    from mrpc_check.pipeline.checkpoint import latest_checkpoint
    from mrpc_check.pipeline.report import pair_problem, read_report

    folder = Path(cfg_dict["output_dir"])
    if (folder / "report.json").is_file() and not cfg_dict.get("overwrite"):
        # Planned without a report, so an earlier attempt of this very task wrote it (a Ray retry after the worker
        # died between writing the report and returning): read it back, guarded; if that attempt died between
        # model/ and report.json, go on from its checkpoints, or redo it.
        report = read_report(folder, paired=False)  # a truncated or hand-edited one: one line, never trained over
        if pair_problem(folder) is None:
            return run_entry(report, cfg_dict["seed"], folder)
        cfg_dict = {**cfg_dict, **({"resume": True} if latest_checkpoint(folder) is not None else {"overwrite": True})}
    reset_accelerate()  # runs in one process must not inherit the previous run's Accelerator
    cfg = make_config(**cfg_dict)
    return run_entry(train_any(cfg), cfg.seed, Path(cfg.output_dir))


ENGINES = ("local", "ray")
KEEP_MODELS = ("all", "best", "none")


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Where a sweep's runs go: ``local`` (this machine: in process, or ``jobs`` processes) or ``ray``."""

    engine: str = "local"
    jobs: int = 1  # local: runs at once, each in its own process
    address: Optional[str] = None  # ray: an existing cluster (host:port, or auto); None starts a local instance
    cpus_per_run: float = 1  # ray: CPUs each task declares (its torch threads)
    gpus_per_run: float = 0  # ray: GPUs each task declares
    max_retries: int = 3  # ray: retries of a task whose worker died (a run that raises is not retried)
    keep_models: str = "all"  # all | best (the seed with the highest validation F1) | none: model folders kept at the end
    progress: bool = True


def engine(name: str):
    """The one seam between a sweep and where its runs execute: a module with ``run_all(run, configs, options)``.

    Each engine lives in its own module and only this function imports it, so Ray is needed only
    when asked for.
    """
    if name == "local":
        from mrpc_check.acceptance import engine_local

        return engine_local
    if name == "ray":
        from mrpc_check.acceptance import engine_ray

        engine_ray._import_ray()  # refused now, with the extra's name, before any run
        return engine_ray
    raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")


def run_sweep(cfg: TrainConfig, seeds: Sequence[int], out, floors: Optional[Floors] = None, rule: str = "median",
              jobs: int = 1, overwrite: bool = False, progress: bool = True, options: Optional[EngineOptions] = None) -> dict:
    """Train ``cfg`` once per seed under ``out/seed-<s>/`` and judge the spread.

    Args:
        cfg: the recipe (its ``seed`` and ``output_dir`` are replaced per run).
        seeds: distinct seeds.
        out: the sweep folder: ``seed-<s>/`` per run, ``sweep.json``, ``sweep.png``.
        floors: the acceptance rules (default :class:`Floors`); refused before any run when
            the majority class alone clears them.
        rule: ``median`` or ``all`` (see :func:`rule_text`).
        jobs: runs at once, each in its own process (the local engine).
        overwrite: redo finished seeds instead of reading them back.
        options: the engine and its settings (``jobs`` and ``progress`` are taken from here when given).

    Returns:
        ``{"config", "seeds", "floors", "baseline", "runs", "failed", "summary"}`` (also ``out/sweep.json``);
        ``failed`` lists the seeds that failed for good (Ray engine), with their errors.

    Raises:
        MrpcCheckError: bad input, before any run starts.
    """
    from tqdm.auto import tqdm

    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.stats import majority_baseline
    floors = floors or Floors()
    options = options or EngineOptions(jobs=jobs, progress=progress)
    if rule not in RULES:
        raise ConfigError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if options.jobs <= 0:
        raise ConfigError(f"--jobs must be a positive integer, got {options.jobs}")
    if options.max_retries < 0 or options.cpus_per_run <= 0 or options.gpus_per_run < 0:
        raise ConfigError("--max-retries and --gpus-per-run must be >= 0 and --cpus-per-run > 0")
    if options.keep_models not in KEEP_MODELS:
        raise ConfigError(f"--keep-models must be one of {', '.join(KEEP_MODELS)}, got {options.keep_models!r}")
    runner = engine(options.engine)
    out = Path(out).expanduser()
    baseline = majority_baseline(load_mrpc(cfg.data)["validation"]["label"])
    refuse_at_baseline(floors, baseline)
    done, todo = _plan(cfg, seeds, out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    failed: list[dict] = []
    models: dict = {}  # seed -> model folder kept at the end (--keep-models)

    def record(runs: list[dict], final: bool) -> dict:
        def result_of(seeds_all: list, runs: list[dict], failed: list[dict]) -> dict:
            at = {s: i for i, s in enumerate(seeds_all)}
            runs = sorted(runs, key=lambda r: at[r["seed"]])
            summary = summarise(runs, floors, rule) if runs else None
            if failed:
                # Never a silent spread over fewer seeds: the verdict says what it rests on, and fails.
                lost = ", ".join(str(f["seed"]) for f in sorted(failed, key=lambda f: at[f["seed"]]))
                note = f"seed {lost} failed for good: the spread rests on {len(runs)} of {len(seeds_all)} seeds"
                summary = {**(summary or {"runs": 0, "rule": rule_text(floors, rule)}), "passed": False,
                           "failures": [note, *((summary or {}).get("failures", []))]}
            return {"config": config, "seeds": list(seeds_all), "floors": floors.to_dict(), "baseline": baseline, "runs": runs,
                    "failed": failed, "complete": final,
                    **({"models": dict(models), "keep_models": options.keep_models} if final else {}), "summary": summary}

        # Under a lock, merged with what another sweep of this recipe on the folder recorded: a kill now loses nothing finished.
        return write_summary(out, config, list(seeds), runs, list(failed), result_of)

    config = {**cfg.to_dict(), "output_dir": str(out.resolve())}
    existing = read_summary(out / SWEEP_JSON)  # one line, naming the file, when it is not a readable summary
    if existing is not None and not overwrite and not same_recipe(existing.get("config", {}), config):
        raise ConfigError(f"{str(out / SWEEP_JSON)!r} summarises a sweep of another recipe: pass --overwrite to replace it, "
                          "or another --output-dir")
    running = _claim(out)  # None: another sweep runs on this folder (said once; both are kept)
    runs = list(done)
    lines = options.engine != "local" and options.progress  # a cluster's progress: one line per finished seed
    bar = tqdm(total=len(seeds), initial=len(done), desc="sweep", unit="run", disable=not options.progress or lines,
               dynamic_ncols=True)
    for outcome in (runner.run_all(_one_run, [c.to_dict() for c in todo], options) if todo else ()):
        if outcome["entry"] is None:
            failed.append({k: outcome[k] for k in ("seed", "error", "node")})
        else:
            runs.append(outcome["entry"])
        record(runs, final=False)  # a kill now loses nothing finished
        if lines:
            print(progress_line(outcome, runs, len(seeds)), flush=True)
        elif outcome["entry"] is not None:
            bar.set_postfix(seed=runs[-1]["seed"], f1=f"{runs[-1]['f1']:.4f}")
        bar.update()
    bar.close()
    models.update(prune_models(out, runs, options.keep_models))
    result = record(runs, final=True)
    if running is not None:
        running.release()
    skipped = draw_sweep(result, out / SWEEP_PLOT) if runs else None
    if skipped:
        print(skipped)
    return result


def _claim(out: Path):
    """This sweep's claim on ``out`` (a held lock), or None when another sweep holds it: said, and both go on."""
    from filelock import FileLock, Timeout

    claim = FileLock(str(out / RUNNING_NAME), timeout=0)
    try:
        claim.acquire()
        return claim
    except Timeout:
        print(f"note: another sweep is running on {out}: each seed's run is its own, and {SWEEP_JSON} holds both "
              "sweeps' results, merged by seed")
        return None


def prune_models(out: Path, runs: list[dict], keep: str) -> dict:
    """Delete the model folders ``keep`` does not keep (reports, curves and metrics stay); returns seed -> kept folder."""
    import shutil

    from mrpc_check.pipeline.report import MODEL_DIR

    best = max(runs, key=lambda r: r["f1"])["seed"] if runs else None
    kept = {}
    for run in runs:
        folder = seed_dir(out, run["seed"]) / MODEL_DIR
        if not (keep == "all" or (keep == "best" and run["seed"] == best)) and folder.is_dir():
            shutil.rmtree(folder)
        if folder.is_dir():
            kept[str(run["seed"])] = str(folder)
    return kept
