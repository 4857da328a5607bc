"""``mrpc-check``: flags -> config -> pipeline. Nothing else lives here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from mrpc_check.pipeline.config import (
    DEVICES,
    fast_preset,
    LOOPS,
    PRECISIONS,
    SCHEDULERS,
    TrainConfig,
    default_data_source,
    make_config,
    recipe_from_file,
)
from mrpc_check.errors import MrpcCheckError, Preempted
from mrpc_check.acceptance.floors import FLOOR_ON, Floors
from mrpc_check.acceptance.sweep import ENGINES, RULES

PROG = "mrpc-check"


def _optional_int(text: str) -> Optional[int]:
    return None if text.lower() == "none" else int(text)


def _optional_float(text: str) -> Optional[float]:
    return None if text.lower() == "none" else float(text)


class _VerboseSubparsers:
    """Every subcommand takes --verbose (the Hugging Face libraries' own logging, retries included)."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        p = self.sub.add_parser(name, **kwargs)
        p.add_argument("--verbose", action="store_true", help="show the Hugging Face libraries' own log messages [off]")
        return p


def _floor_args(p, required: bool) -> None:
    """Acceptance floors; for train/evaluate they judge only when given, for sweep always."""
    f = Floors()
    state = "default" if required else "off unless given"
    p.add_argument("--min-f1", type=float, default=f.min_f1 if required else None,
                   help=f"validation F1 floor; refused at or below the majority baseline [{f.min_f1 if required else 'off'}]")
    p.add_argument("--min-accuracy", type=float, default=f.min_accuracy if required else None,
                   help=f"validation accuracy floor [{f.min_accuracy if required else 'off'}; {f.min_accuracy} when --min-f1 is given]")
    p.add_argument("--floor-on", choices=FLOOR_ON, default=f.on if required else None,
                   help=f"'point': the estimate clears the floor; 'lower': the bootstrap 95%% interval's lower end does [{f.on}, {state}]")
    p.add_argument("--max-gap", type=float, default=None,
                   help="largest |validation F1 - test F1| allowed, when the data has a labelled test split [off]")


def _floors_from(args: argparse.Namespace, required: bool = False) -> Optional[Floors]:
    given = (args.min_f1, args.min_accuracy, args.max_gap, args.floor_on)
    if not required and all(value is None for value in given):
        return None  # train and evaluate judge only when a floor option is given
    d = Floors()
    return Floors(min_f1=d.min_f1 if args.min_f1 is None else args.min_f1,
                  min_accuracy=d.min_accuracy if args.min_accuracy is None else args.min_accuracy,
                  on=args.floor_on or d.on, max_gap=args.max_gap)


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="fine-tune on MRPC and write OUTPUT/report.json, curves.png, model/")
    _recipe_args(p)
    _floor_args(p, required=False)
    p.add_argument("--no-behaviour", dest="behaviour", action="store_false",
                   help="leave out the behaviour tests of the trained model (report.json's behaviour section) [run them]")
    return p


def _sweep_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="train one recipe over several seeds; median, IQR, min, max and a verdict")
    p.add_argument("--seeds", required=True, help="seeds to run: 1,2,3 or 1-5")
    p.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process with cores/jobs threads "
                   "(and its own GPU when there are several) [%(default)s]")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep every combination of recipe settings, one sweep per point under OUTPUT/<point>/, e.g. "
                        "--grid lr=2e-5,5e-5 --grid batch-size=16,32; OUTPUT/grid.json holds each point's verdict [none]")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where the seeds run: local (this machine, --jobs processes) or ray (one Ray task per seed; "
                        "needs mrpc_check[ray]) [%(default)s]")
    p.add_argument("--address", default=None, help="ray: the cluster to join (host:port, or auto inside a Ray job); "
                   "without it a local Ray instance starts [none]")
    p.add_argument("--cpus-per-run", type=float, default=1, help="ray: CPUs each seed's task declares (its torch threads) [%(default)s]")
    p.add_argument("--gpus-per-run", type=float, default=0, help="ray: GPUs each seed's task declares [%(default)s]")
    p.add_argument("--max-retries", type=int, default=3,
                   help="ray: retries of a seed whose worker died (killed, preempted, out of memory); it resumes from its "
                        "last checkpoint with --checkpoint-every. A run that raises is not retried [%(default)s]")
    p.add_argument("--keep-models", choices=("all", "best", "none"), default="all",
                   help="model folders kept when the sweep ends: all, best (the seed with the highest validation F1), or none "
                        "(reports, curves and metrics always stay) [%(default)s]")
    p.add_argument("--rule", choices=RULES, default="median",
                   help="median: no degenerate run and the median clears the floors; all: every run clears them [%(default)s]")
    _recipe_args(p)
    _floor_args(p, required=True)
    return p


def _recipe_args(p) -> None:
    d = TrainConfig()
    p.add_argument("--config", default=None, metavar="FILE",
                   help="start from a recorded recipe: a JSON or TOML file with TrainConfig's keys, or a run's report.json "
                        "(its 'config'); flags given on the command line win [none]")
    p.add_argument("--print-config", action="store_true", help="print the resolved recipe as JSON and exit, without training")
    p.add_argument("--model", default=d.model, help="pretrained starting point: Hub id, local folder, or 'minilm' (offline) [%(default)s]")
    p.add_argument("--data", default=None, help="'hub', a GLUE MRPC folder or a raw MSR folder [$MRPC_DATA, else ../shared/data/glue/MRPC beside the checkout, else hub]")
    p.add_argument("--loop", default=d.loop, metavar="LOOP",
                   help=f"training loop: {', '.join(LOOPS)} (plain PyTorch, Accelerate, transformers.Trainer), or your own "
                        "adapter, file.py:adapter or package.module:adapter (the one verify judges) [%(default)s]")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training split [%(default)s]")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="training pairs per micro-batch, per process [%(default)s]")
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size, help="pairs per evaluation batch; does not change results [%(default)s]")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW peak learning rate [%(default)s]")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler, help="learning-rate schedule after warmup [%(default)s]")
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="share of optimizer steps spent warming up [%(default)s]")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="warmup in optimizer steps (instead of --warmup-ratio) [%(default)s]")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay; biases and LayerNorm exempt [%(default)s]")
    p.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-batches per optimizer step [%(default)s]")
    p.add_argument("--max-grad-norm", type=_optional_float, default=d.max_grad_norm, help="clip the gradient norm to this; none: no clipping [%(default)s]")
    p.add_argument("--mixed-precision", choices=PRECISIONS, default=d.mixed_precision,
                   help="autocast dtype; weights stay fp32; fp16 needs CUDA [%(default)s]")
    p.add_argument("--max-length", type=_optional_int, default=d.max_length, help="truncate pairs to this many tokens; none: the model's limit [%(default)s]")
    p.add_argument("--pad-to-multiple-of", type=_optional_int, default=d.pad_to_multiple_of, help="pad batches to a multiple of this [%(default)s]")
    p.add_argument("--group-by-length", action="store_true", help="shuffled batches of similar lengths: less padding, same randomness [off]")
    p.add_argument("--dropout", type=_optional_float, default=d.dropout,
                   help="every dropout rate of the model; none: the checkpoint's own (walkthrough) [%(default)s]")
    p.add_argument("--freeze-layers", type=int, default=d.freeze_layers,
                   help="no gradient for the embeddings and the first N encoder layers; 0: train everything (walkthrough) [%(default)s]")
    p.add_argument("--seed", type=int, default=d.seed, help="head initialisation, dropout and batch order all derive from it [%(default)s]")
    p.add_argument("--max-train-samples", type=_optional_int, default=d.max_train_samples, help="train on the first N pairs only; none: all [%(default)s]")
    p.add_argument("--device", choices=DEVICES, default=d.device, help="auto: CUDA when present, else CPU [%(default)s]")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader worker processes [%(default)s]")
    p.add_argument("--log-every", type=int, default=d.log_every, help="optimizer steps between loss read-backs on the progress bar [%(default)s]")
    p.add_argument("--output-dir", default=d.output_dir, help="where report.json, curves.png and model/ go [%(default)s]")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --output-dir [off: refused]")
    p.add_argument("--checkpoint-every", default=None, metavar="{N,epoch}",
                   help="save a resumable checkpoint every N optimizer steps or each epoch [none; SIGTERM/SIGINT still save one]")
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints,
                   help="checkpoints kept: the newest, and older ones to fall back to when it is damaged [%(default)s]")
    p.add_argument("--resume", action="store_true", help="continue from the newest whole checkpoint in --output-dir [off]")
    p.add_argument("--fast", action="store_true",
                   help="fastest measured mode: --group-by-length --mixed-precision bf16 --batch-size 32 --lr 1e-4 --dropout 0 "
                        "--freeze-layers 2 (flags given explicitly win; bf16 only where the CPU has it natively) [off]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Fine-tune and verify BERT-style models on GLUE MRPC.")
    sub = _VerboseSubparsers(parser.add_subparsers(dest="command", required=True))
    parser.recipe_parsers = {"train": _train_parser(sub), "sweep": _sweep_parser(sub)}  # where --config sets defaults

    e = sub.add_parser("evaluate", help="score a fine-tuned model as it is (no training); prints JSON")
    e.add_argument("--model", required=True, help="fine-tuned model folder (OUTPUT/model) or Hub id")
    e.add_argument("--data", default=None, help="MRPC source [$MRPC_DATA, else ../shared/data/glue/MRPC beside the checkout, else hub]")
    e.add_argument("--split", choices=("validation", "test"), default="validation")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--output", default=None, help="also write the JSON to this file")
    e.add_argument("--no-behaviour", dest="behaviour", action="store_false",
                   help="leave out the behaviour tests (the output's behaviour section; see mrpc-check behave) [run them]")
    _floor_args(e, required=False)

    b = sub.add_parser("behave", help="behaviour tests of a paraphrase classifier (original, symmetry, identity, unrelated, "
                                      "surface, negation, numbers, entity_swap, word_order); exit 1 when a thresholded test fails")
    which = b.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a model folder (a train output's model/, any Hub-format sequence classifier) or Hub id")
    which.add_argument("--predictor", metavar="FILE.py:FN", help="your own predict(pairs) -> P(equivalent) per pair: "
                                                              "file.py:function or package.module:function")
    b.add_argument("--data", default=None, help="MRPC source [$MRPC_DATA, else ../shared/data/glue/MRPC beside the checkout, else hub]")
    b.add_argument("--split", choices=("validation", "test"), default="validation",
                   help="the split whose pairs the tests are generated from (test: the DIR tests need its labels) [%(default)s]")
    b.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE as JSON")
    b.add_argument("--batch-size", type=int, default=64, help="pairs per forward for --model [%(default)s]")
    b.add_argument("--device", choices=DEVICES, default="auto")
    b.add_argument("--margin", type=float, default=None, help="DIR tests: how far P(equivalent) must fall [0.1]")
    b.add_argument("--threshold", action="append", default=[], metavar="TEST=LIMIT",
                   help="a test's failure-rate limit: a rate (symmetry=0.15), a yardstick's rate on the same cases "
                        "less some points (negation=overlap-0.2; yardsticks overlap, first_sentence, majority, unedited), "
                        "or TEST=none to report it without judging; repeatable [defaults from the reference model, "
                        "docs/behaviour.md]")

    v = sub.add_parser("verify", help="run the check battery on a training loop; exit 1 when a check fails")
    v.add_argument("--loop", required=True, metavar="MODULE:ADAPTER",
                   help="the loop's adapter: package.module:adapter, file.py:adapter, or manual, accelerate, trainer, example")
    v.add_argument("--checks", default=None, help="comma-separated subset of checks [all single-process ones]")
    v.add_argument("--json", default=None, metavar="FILE", help="also write the verdicts to FILE as JSON")
    v.add_argument("--arch", choices=("bert", "roberta", "distilbert"), default="bert",
                   help="tiny model family the battery trains: bert (real uncased vocabulary), roberta or distilbert (tokenizers trained offline) [%(default)s]")
    v.add_argument("--distributed", action="store_true", help="also run the 2-process checks (torchrun; adapters with distributed = True)")
    v.add_argument("--strict", action="store_true", help="exit 1 on a warning too (a confined, graded effect such as loss / accum) [off]")
    v.add_argument("--process-timeout", type=float, default=None, metavar="SECONDS",
                   help="limit of the 2-process run; past it the 2-process checks are `error` (not judged), not failures "
                   "[MRPC_PROCESS_TIMEOUT, else 300]")

    i = sub.add_parser("inspect", help="split sizes, label balance, one batch's shapes and loss")
    i.add_argument("--model", default=TrainConfig.model)
    i.add_argument("--data", default=None, help="MRPC source [$MRPC_DATA, else ../shared/data/glue/MRPC beside the checkout, else hub]")
    i.add_argument("--batch-size", type=int, default=8)
    i.add_argument("--max-length", type=_optional_int, default=None)
    return parser


def _config_from(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if args.fast:
        defaults = TrainConfig()  # the train flags' defaults are the config's
        preset, note = fast_preset(values["device"])
        changed = []
        for key, value in preset.items():
            if values[key] == getattr(defaults, key) and value != getattr(defaults, key):  # not set on the command line
                values[key] = value
                changed.append(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}"))
        # One line says what --fast changed (the report records the resolved recipe), and why bf16 is not among them.
        why = f"; {note}" if note and values["mixed_precision"] == defaults.mixed_precision else ""
        print(f"--fast: {' '.join(changed) or 'nothing (every setting given explicitly)'}{why}", file=sys.stderr)
    if ".py:" in values.get("loop", ""):  # a file adapter: the same file from any folder a sweep's runs start in
        where, _, attr = values["loop"].rpartition(":")
        values["loop"] = f"{Path(where).expanduser().resolve()}:{attr}"
    return make_config(**values)


def _verify(args: argparse.Namespace) -> int:
    """The battery on one loop: a table on stdout; exit 1 when a check fails, 3 when none fails but one could not judge."""
    from mrpc_check.checks import check_names, format_table, load_adapter, run_battery, to_json
    from mrpc_check.checks.battery import exit_status
    from mrpc_check.errors import ConfigError
    from mrpc_check.pipeline.report import atomic_write_text

    adapter = load_adapter(args.loop)  # AdapterError: one line, exit 2
    if args.process_timeout is not None:
        from mrpc_check.checks.distributed import TIMEOUT_ENV

        if not args.process_timeout > 0:
            raise ConfigError(f"--process-timeout {args.process_timeout:g}: give the 2-process run's limit in seconds (> 0)")
        os.environ[TIMEOUT_ENV] = f"{args.process_timeout:g}"  # read where the ranks are launched
    names = [n.strip() for n in args.checks.split(",") if n.strip()] if args.checks else None
    if names is None and args.distributed:
        names = check_names(("fast", "gpu", "distributed"))
    known = check_names(("fast", "gpu", "distributed"))
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        from mrpc_check.checks.contract import did_you_mean

        raise ConfigError(f"--checks: unknown {', '.join(unknown)}{did_you_mean(unknown[0], known)}; pick from {', '.join(known)}")
    from mrpc_check.checks.harness import ARCHES

    from mrpc_check.checks.contract import capabilities

    caps = capabilities(adapter, args.loop)
    verdicts = run_battery(adapter, arch=ARCHES[args.arch](), checks=names)
    print(format_table(args.loop, verdicts, caps))
    if args.json:
        atomic_write_text(Path(args.json), to_json(args.loop, verdicts, args.strict, caps) + "\n")
    status = exit_status(verdicts, args.strict)
    if status and args.strict and not any(v.status == "fail" for v in verdicts):
        print(f"{PROG}: --strict: a warning fails the run", file=sys.stderr)
    return status


def _behaviour_into_report(cfg: TrainConfig, report: dict) -> dict:
    """The trained model's behaviour tests on validation, added to report.json (and said when one fails).

    Run here, above the pipeline, on the model folder the run saved: the pipeline does not import
    acceptance, and the figures are the ones ``mrpc-check behave --model OUTPUT/model`` gives.
    """
    from mrpc_check.acceptance.behaviour import failure_lines, model_behaviour
    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.report import REPORT_NAME, write_json

    out = Path(cfg.output_dir).expanduser()
    result = model_behaviour(str(out / "model"), load_mrpc(cfg.data)["validation"], device=cfg.device)
    report = {**report, "behaviour": result}
    write_json(out / REPORT_NAME, report)
    for line in failure_lines(result):
        print(f"warning: {line}")
    return report


def _behave(args: argparse.Namespace) -> int:
    """Behaviour tests of a model folder or a user's predictor: a table, exit 1 when a thresholded test fails."""
    from mrpc_check.acceptance.behaviour import (TEST_NAMES, format_table, load_predictor, model_behaviour,
                                                 suite_from, suite_on_split)
    from mrpc_check.errors import ConfigError, DataError
    from mrpc_check.pipeline.data import load_mrpc
    from mrpc_check.pipeline.report import atomic_write_text

    overrides = {}
    for item in args.threshold:
        name, sep, rate = item.partition("=")
        if not sep or name.strip() not in TEST_NAMES:
            raise ConfigError(f"--threshold {item!r}: write TEST=RATE, TEST=YARDSTICK-POINTS or TEST=none with TEST one of "
                              f"{', '.join(TEST_NAMES)}")
        overrides[name.strip()] = rate
    suite = suite_from(overrides, args.margin)
    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    raw = load_mrpc(args.data or default_data_source())
    if args.split not in raw:
        raise DataError(f"split {args.split!r} is not in this MRPC source (it has {', '.join(raw)}): pick one of those")
    if args.predictor:
        name = f"predictor {args.predictor}"
        result = suite_on_split(load_predictor(args.predictor), raw[args.split], suite, name)
    else:
        name = f"model {args.model}"
        result = model_behaviour(args.model, raw[args.split], suite, args.device, args.batch_size, name)
    result = {**result, "split": args.split, "classifier": name}
    print(f"behaviour of {name} on {args.split}")
    print(format_table(result))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=2) + "\n")
    for failed in result["failed"]:
        print(f"{PROG}: behaviour test {failed} fails its threshold", file=sys.stderr)
    return 1 if result["failed"] else 0


def _close_progress_bars() -> None:
    """Close a progress bar an error interrupted now, so that the error is the last line printed."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _floor_verdict(verdict: Optional[dict]) -> int:
    """Exit status of a judged run: 1 with one line per failed rule, after the results are written."""
    if verdict is None or verdict["passed"]:
        return 0
    for failure in verdict["failures"]:
        print(f"{PROG}: below the floors: {failure}", file=sys.stderr)
    return 1


def parse(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line; a ``--config FILE`` supplies defaults that explicit flags override."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        recorded = recipe_from_file(args.config)
        unknown = sorted(set(recorded) - names)
        if unknown:
            from mrpc_check.errors import ConfigError

            raise ConfigError(f"--config {args.config}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        try:
            make_config(**recorded)  # wrong types and values named now, as the file's, before argparse sees them
        except MrpcCheckError as exc:
            raise type(exc)(f"--config {args.config}: {exc}") from None
        parser.recipe_parsers[args.command].set_defaults(**recorded)
        args = parser.parse_args(argv)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse(argv)
    except MrpcCheckError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    from mrpc_check.hub import quiet

    quiet(args.verbose)

    try:
        if args.command == "verify":  # before the pipeline's imports (the Trainer, the metric): a loop's verdict sooner
            return _verify(args)
        from mrpc_check.acceptance.user_loop import train_any
        from mrpc_check.pipeline.run import inspect_pipeline, run_evaluation
        from mrpc_check.pipeline.report import write_json

        if args.command in ("train", "sweep") and args.print_config:
            print(json.dumps(_config_from(args).to_dict(), indent=2))
            return 0
        if args.command == "train":
            cfg = _config_from(args)
            report = train_any(cfg, _floors_from(args), command=[PROG, *(sys.argv[1:] if argv is None else argv)])
            if args.behaviour and os.environ.get("RANK", "0") == "0":
                report = _behaviour_into_report(cfg, report)
            v = report["metrics"]["validation"]
            print(f"validation accuracy {v['accuracy']:.4f}  f1 {v['f1']:.4f}  ->  {Path(args.output_dir) / 'report.json'}")
            return _floor_verdict(report.get("floors"))
        elif args.command == "sweep":
            from mrpc_check.acceptance.sweep import EngineOptions, format_summary, parse_seeds, run_sweep

            cfg = _config_from(args)
            options = EngineOptions(args.engine, args.jobs, args.address, args.cpus_per_run, args.gpus_per_run, args.max_retries,
                                    args.keep_models)
            if args.grid:
                from mrpc_check.acceptance.sweep import format_grid, parse_grid, run_grid

                grid = run_grid(cfg, parse_grid(args.grid), parse_seeds(args.seeds), cfg.output_dir,
                                _floors_from(args, required=True), args.rule, overwrite=cfg.overwrite, options=options)
                print(format_grid(grid))
                print(f"->  {Path(cfg.output_dir) / 'grid.json'}")
                return 0 if grid["passed"] else 1
            result = run_sweep(cfg, parse_seeds(args.seeds), cfg.output_dir, _floors_from(args, required=True), args.rule,
                               overwrite=cfg.overwrite, options=options)
            print(format_summary(result))
            print(f"->  {Path(cfg.output_dir) / 'sweep.json'}")
            return 0 if result["summary"]["passed"] else 1
        elif args.command == "evaluate":
            metrics = run_evaluation(args.model, args.data or default_data_source(), args.split, args.batch_size, args.device,
                                     _floors_from(args))
            if args.behaviour:
                from mrpc_check.acceptance.behaviour import model_behaviour
                from mrpc_check.pipeline.data import load_mrpc

                metrics["behaviour"] = model_behaviour(args.model, load_mrpc(args.data or default_data_source())[args.split],
                                                       device=args.device)
            if args.output:
                write_json(Path(args.output), metrics)
            print(json.dumps(metrics, indent=2))
            if metrics["degenerate"]:  # said on its own line, not only inside the JSON; exit 1 only with floors
                print(f"{PROG}: warning: degenerate model on {args.split}: {metrics['degenerate']}", file=sys.stderr)
            return _floor_verdict(metrics.get("floors"))
        elif args.command == "behave":
            return _behave(args)
        else:
            print(json.dumps(inspect_pipeline(args.model, args.data or default_data_source(), args.batch_size, args.max_length), indent=2))
    except Preempted as exc:  # not an error: the run stopped where asked, with its checkpoint
        _close_progress_bars()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except MrpcCheckError as exc:
        _close_progress_bars()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
