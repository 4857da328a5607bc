"""Check 12: every recipe flag of ``mrpc-check train`` visibly changes what the run does.

A silently ignored flag is a bug: the report records the flag, the run does something else.
Each flag is run end to end through the CLI (``mrpc_check.cli.main``) on a tiny model folder
and a GLUE-layout folder, with the :class:`~mrpc_check.checks.observe.Observer` attached to
the model the pipeline loads, and compared with the same command without the flag:

=====================  ===================================================================
flag                   what the observation must show
=====================  ===================================================================
--seed                 other training losses (head initialisation and data order)
--weight-decay         decay in the optimizer's groups, biases and LayerNorm exempt; other weights
--max-length           no forward wider than it (the baseline has wider ones)
--pad-to-multiple-of   every forward's width a multiple of it (the baseline's are not)
--group-by-length      a smaller padding fraction than the baseline's
--warmup-steps/ratio   the first step at lr 0, rising to the peak
--grad-accum           half the optimizer steps
--max-grad-norm        every applied gradient norm equal to it
--batch-size           forwards of that many rows
--lr                   the peak rate used
--dropout              the model's dropout rates at 0 (the baseline's are not)
--freeze-layers        no step updates the embeddings or layer 0; the baseline's steps do
=====================  ===================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mrpc_check.checks.harness import quiet
from mrpc_check.checks.observe import Observation, Observer
from mrpc_check.checks.verdict import Verdict, fail, ok


def observe_train(model_dir: str, data_dir: str, out_dir: str, *flags: str) -> Observation:
    """Run ``mrpc-check train`` in-process with the observer on the model the pipeline loads."""
    from unittest import mock

    import mrpc_check.pipeline.run as pipeline

    # The one import that runs up the layers, on purpose: what this check judges is the command a
    # user types (flag -> config -> run), so it must go through the CLI. The battery never runs it
    # on a user's loop (it is not in REGISTRY), and nothing below the CLI imports this module.
    from mrpc_check.cli import main
    from mrpc_check.testing import reset_accelerate

    observers = []
    real_load = pipeline.load_model

    def load_and_observe(*args, **kwargs):
        model = real_load(*args, **kwargs)
        observers.append(Observer(model).__enter__())
        return model

    argv = ["train", "--model", model_dir, "--data", data_dir, "--output-dir", out_dir, "--epochs", "1",
            "--lr", "1e-3", "--batch-size", "4", "--log-every", "1000", *flags]
    try:
        with mock.patch.object(pipeline, "load_model", load_and_observe), quiet() as sink:
            code = main(argv)
    finally:
        for observer in observers:
            observer.__exit__(None, None, None)
        reset_accelerate()
    if code != 0 or not observers:
        raise RuntimeError(f"mrpc-check {' '.join(argv)} exited {code}: {sink.getvalue()[-500:]}")
    return observers[0].observation


def padding_fraction(obs: Observation) -> float:
    train = obs.train_forwards()
    fed = sum(f.shape[0] * f.shape[1] for f in train)
    return 1 - sum(f.real_tokens for f in train) / fed


def _widths(obs: Observation) -> list:
    return [f.shape[-1] for f in obs.forwards]


@dataclass(frozen=True)
class Flag:
    name: str
    args: tuple
    effect: Callable  # (observation with the flag, baseline observation) -> (holds, figure)


def _seed(o, b):
    return o.train_losses() != b.train_losses(), f"first losses {o.train_losses()[:2]} vs baseline {b.train_losses()[:2]}"


def _decay(o, b):
    groups = sorted(set(o.steps[0].weight_decays))
    return groups == [0.0, 0.1], f"optimizer groups' weight decay {groups} (baseline {sorted(set(b.steps[0].weight_decays))})"


def _max_length(o, b):
    return max(_widths(o)) <= 16 < max(_widths(b)), f"widest forward {max(_widths(o))} (baseline {max(_widths(b))}), limit 16"


def _multiple(o, b):
    bad = [w for w in _widths(o) if w % 32]
    return not bad and any(w % 32 for w in _widths(b)), f"widths {sorted(set(_widths(o)))} (baseline {sorted(set(_widths(b)))[:6]}...)"


def _grouping(o, b):
    return padding_fraction(o) < padding_fraction(b), f"padding {padding_fraction(o):.1%} vs baseline {padding_fraction(b):.1%}"


def _warmup(o, b):
    lrs = [s.lrs[0] for s in o.steps]
    return lrs[0] == 0.0 and lrs[3] == max(lrs) and b.steps[0].lrs[0] > 0, f"lrs {[f'{x:.1e}' for x in lrs[:5]]} (baseline starts {b.steps[0].lrs[0]:.1e})"


def _accum(o, b):
    return len(o.steps) == math.ceil(len(b.steps) / 2), f"{len(o.steps)} optimizer steps (baseline {len(b.steps)})"


def _clip(o, b):
    norms = [s.grad_norm for s in o.steps]
    return all(abs(n - 1e-3) < 1e-6 for n in norms), f"gradient norms {min(norms):.2e}..{max(norms):.2e}, clip 1e-3"


def _batch(o, b):
    sizes = {f.shape[0] for f in o.train_forwards()}
    return max(sizes) == 2 and max(f.shape[0] for f in b.train_forwards()) == 4, f"training batch sizes {sorted(sizes)}"


def _lr(o, b):
    return max(s.lrs[0] for s in o.steps) == 3e-4 != max(s.lrs[0] for s in b.steps), f"peak lr {max(s.lrs[0] for s in o.steps):.1e}"


def _dropout(o, b):
    return o.dropout == 0.0 < b.dropout, f"largest dropout rate {o.dropout} (baseline {b.dropout})"


def _frozen(names) -> set:
    return {n for n in names if ".embeddings." in n or ".layer.0." in n}


def _freeze(o, b):
    touched = set().union(*(s.updated for s in o.steps))
    baseline = set().union(*(s.updated for s in b.steps))
    frozen, trained = _frozen(touched), touched - _frozen(touched)
    return (not frozen and bool(_frozen(baseline)) and bool(trained),
            f"{len(frozen)} embedding/layer-0 tensors updated (baseline {len(_frozen(baseline))}), {len(trained)} others")


FLAGS = (
    Flag("seed", ("--seed", "7"), _seed),
    Flag("weight_decay", ("--weight-decay", "0.1"), _decay),
    Flag("max_length", ("--max-length", "16"), _max_length),
    Flag("pad_to_multiple_of", ("--pad-to-multiple-of", "32"), _multiple),
    Flag("group_by_length", ("--group-by-length",), _grouping),
    Flag("warmup_steps", ("--warmup-steps", "3"), _warmup),
    Flag("warmup_ratio", ("--warmup-ratio", "0.3"), _warmup),
    Flag("grad_accum", ("--grad-accum", "2"), _accum),
    Flag("max_grad_norm", ("--max-grad-norm", "0.001"), _clip),
    Flag("batch_size", ("--batch-size", "2"), _batch),
    Flag("lr", ("--lr", "3e-4"), _lr),
    Flag("dropout", ("--dropout", "0"), _dropout),
    Flag("freeze_layers", ("--freeze-layers", "1"), _freeze),
)


def flag_verdict(flag: Flag, with_flag: Observation, baseline: Observation) -> Verdict:
    holds, figure = flag.effect(with_flag, baseline)
    name = f"recipe:{flag.name}"
    if not holds:
        return fail(name, figure, f"{' '.join(flag.args)} is silently ignored (or misapplied)",
                    f"thread {flag.name} from the config into the stage that uses it")
    return ok(name, figure)


def check_recipe_reaches_run(model_dir: str, data_dir: str, workdir: str, flags=FLAGS) -> list[Verdict]:
    """One verdict per flag: its run against the baseline run, both observed end to end."""
    baseline = observe_train(model_dir, data_dir, str(Path(workdir) / "baseline"))
    return [flag_verdict(f, observe_train(model_dir, data_dir, str(Path(workdir) / f.name), *f.args), baseline) for f in flags]
