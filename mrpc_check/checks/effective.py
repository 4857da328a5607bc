"""The effective recipe: what the loop actually did, inferred from what the battery observed.

Every figure comes from the base run's observation (:mod:`mrpc_check.checks.observe`), never from
the loop's code or its own account:

* **peak lr, schedule, warmup**: the rate of every optimizer step, fitted by the linear schedule's
  closed form (:func:`mrpc_check.checks.facts.schedule.infer_schedule`);
* **weight decay per group, trained and frozen tensors**: the optimizer's param groups at its first
  step, ``requires_grad`` at the start against the first step;
* **clip norm**: the gradient backward produced (tensor hooks) against the one the step applied;
  the step shrank it along the same direction to one common norm, at every step where it was
  larger, and left it untouched where it was smaller: a global-norm clip at that norm;
* **loss**: the gradient the loop's loss sent back into the logits of every training forward (a
  tensor hook on the logits, whoever computed the loss), against the logits' own probabilities:
  plain cross-entropy, label smoothing and class weights each give it a closed form
  (:func:`mrpc_check.checks.facts.loss.infer_loss`), and each row's weight against the mean over its step's rows;
* **accumulation, epochs, batch size, rows per epoch**: the micro-batches before each step;
* **dropout**: the Dropout modules' rates at the first training forward;
* **evaluation passes** and **weights moved outside the optimizer** (an EMA or an average copied
  in, a checkpoint reloaded): forwards without autograd, and the weights each step left against
  the next step's start and the run's end.

:func:`effective_recipe` computes it once per battery; :func:`format_effective` prints it as the
short table ``mrpc-check verify`` shows after the verdicts; ``to_dict`` carries it into ``--json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from mrpc_check.checks.facts.clip import PURE, SAME, ClipFinding, clipped_steps, infer_clip  # noqa: F401  (importable here too)
from mrpc_check.checks.facts.loss import FIT, LossFinding, fit_tolerance, infer_loss  # noqa: F401

MOVED = 1e-6  # relative weight change outside the optimizer above this is a change (fp32 copies agree exactly)


@dataclass
class Row:
    """One line of the effective recipe: the recipe's value, the observed one, and how they relate."""

    name: str
    recipe: str
    observed: str
    mark: str = "="  # "=": as the recipe says; "+": an extra the recipe never asked for; "!": differs

    def to_dict(self) -> dict:
        return {"name": self.name, "recipe": self.recipe, "observed": self.observed,
                "relation": {"=": "as recipe", "+": "extra", "!": "differs"}[self.mark]}


@dataclass
class EffectiveRecipe:
    """What the loop did on the battery's base run, row by row, with the findings the checks read."""

    rows: list = field(default_factory=list)
    clip: ClipFinding = field(default_factory=ClipFinding)
    loss: LossFinding = field(default_factory=LossFinding)
    frozen: list = field(default_factory=list)  # tensors the loop set requires_grad=False on
    frozen_prefixes: list = field(default_factory=list)  # the same, as the smallest set of module prefixes
    added: list = field(default_factory=list)  # tensors the loop added to the model (or beside it) and trains
    dropout: Optional[float] = None  # the dropout rate at the first training forward
    dropout_start: float = 0.0  # the model's own, as handed over
    schedule: Optional[tuple] = None  # (warmup, total, stride, offset) of the fitted linear schedule
    moved: dict = field(default_factory=dict)  # observation.moved: weights changed outside the optimizer
    error: str = ""  # the base run crashed: nothing inferred

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows], "error": self.error or None}


def module_prefixes(names: list, all_names: list) -> list:
    """The fewest module prefixes whose parameters are exactly ``names`` (e.g. ['bert.embeddings'])."""
    chosen = set(names)
    out = []
    for name in names:
        parts = name.split(".")
        best = name
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            under = [n for n in all_names if n.startswith(prefix + ".")]
            if under and all(n in chosen for n in under):
                best = prefix
            else:
                break
        if best not in out:
            out.append(best)
    return out


def describe_added(names: list) -> str:
    """What a loop added, in a reader's words: 'LoRA A/B on query, value; a copy of classifier', else module paths.

    PEFT names its tensors by the module they adapt and a method infix (``lora_A``, ``lora_B``,
    ``lora_embedding_A``, ``ia3_l``, ``modules_to_save``), then the adapter's name; a tensor of any
    other kind is shown by its path without the layer index.
    """
    import re

    methods: dict = {}
    copies, other = [], []
    for name in names:
        if ".modules_to_save." in name:
            copies.append(name.split(".modules_to_save.")[0].split(".")[-1])
            continue
        found = re.search(r"\.(lora_(?:embedding_)?[AB]|lora_magnitude_vector|ia3_l|oft_\w+|boft_\w+|vera_lambda_\w+|hada_\w+|lokr_\w+)\b", name)
        if found:
            method = found.group(1).split("_")[0].upper().replace("LORA", "LoRA")
            module = name[: found.start()].split(".")[-1]
            methods.setdefault(method, []).append(module)
        else:
            other.append(re.sub(r"\.\d+\.", ".*.", name))
    parts = []
    for method, modules in methods.items():
        kinds = sorted({n.split(f"{method.lower()}_")[-1][:1] for n in names if f".{method.lower()}_" in n.lower()} & {"A", "B"})
        parts.append(f"{method}{' ' + '/'.join(kinds) if kinds else ''} on {', '.join(dict.fromkeys(modules))}")
    parts += [f"a copy of {module}" for module in dict.fromkeys(copies)]
    parts += list(dict.fromkeys(other))[:3] + (["..."] if len(dict.fromkeys(other)) > 3 else [])
    return "; ".join(parts)


def _fmt(x) -> str:
    return "none" if x is None else f"{x:g}"


def effective_recipe(battery) -> EffectiveRecipe:
    """The effective recipe of ``battery``'s base run; computed once and kept on the battery."""
    cached = getattr(battery, "_effective", None)
    if cached is not None:
        return cached
    try:
        battery._effective = _infer(battery)
    except Exception as exc:  # a loop whose run defeats an inference gets a line, never a traceback
        text = (str(exc).strip().splitlines() or [""])[0][:160]
        battery._effective = EffectiveRecipe(error=f"could not be inferred ({type(exc).__name__}: {text})")
    return battery._effective


def _infer(battery) -> EffectiveRecipe:
    from mrpc_check.checks.facts.optimizer import exempt
    from mrpc_check.checks.facts.rows import epoch_rows, expected_groups, held_out, observed_groups, sanity_rows, scored_passes
    from mrpc_check.checks.facts.schedule import constant_after_warmup, fed_steps, fractional_warmup, infer_schedule, warmup_of

    from mrpc_check.checks.observe import first_model, models_in_run

    whole = battery.base_run()
    eff = EffectiveRecipe()
    if whole.error is not None:
        eff.error = f"the base run raised {type(whole.error).__name__}: nothing inferred"
        return eff
    several = models_in_run(whole)
    run = first_model(whole)  # k models one after another: what one model's training did (the first's)
    recipe, obs = run.recipe, run.observation
    held = held_out(run)  # the loop's own validation split carved from the training rows, if it holds one
    steps = obs.steps
    rows = eff.rows
    # -- the optimizer ----------------------------------------------------------------------------
    peak = max((g["initial_lr"] for g in obs.groups), default=0.0)
    rows.append(Row("peak lr", f"{recipe.lr:g}", f"{peak:g}" if obs.groups else "no optimizer step",
                    "=" if obs.groups and math.isclose(peak, recipe.lr, rel_tol=1e-6) else "!"))
    total = fed_steps(run)
    warmup = warmup_of(recipe, total)
    lrs = [s.lrs[0] for s in steps]
    final = obs.final_lrs[0] if obs.final_lrs else float("nan")
    # Two schedules can fit few rates (no warmup over 12 steps, or warmup 2 over 26 stepped twice per step): the
    # scheduler's own step count, when the loop has one, says which.
    observed = obs.scheduler_stride()
    strides = (observed,) if observed else (1, max(1, recipe.grad_accum))
    eff.schedule = infer_schedule(lrs, final, peak, strides=strides, expect=(warmup, total)) if lrs else None
    want = f"linear, warmup {warmup}, {total} steps to 0"
    constant = constant_after_warmup(run) if lrs else None
    if constant is not None and not (total > constant and lrs and math.isclose(final, 0.0)):
        eff.schedule = (constant, None, 1, 0)
        shape = (f"constant at the peak after a warmup of {constant}" if constant else "constant at the peak") + (
            " (no lr scheduler; the optimizer schedules itself)" if obs.own_schedule else
            " (no lr scheduler)" if obs.scheduler_calls == 0 else "")
        mark = "+" if battery.caps.extra("schedule") == "constant" else "!"
    elif eff.schedule is None:
        flat = lrs and all(math.isclose(x, lrs[0], rel_tol=1e-9) for x in lrs + [final])
        fractional = fractional_warmup(lrs, final, peak) if lrs and peak > 0 else None
        shape, mark = ("constant" if flat else f"linear, warmup {fractional[0]:.3g} (a fraction of a step), {fractional[1]} steps to 0"
                       if fractional else "not a linear schedule with warmup"), "!"
        if fractional:
            eff.schedule = (round(fractional[0], 6), fractional[1], 1, 0)
    else:
        w, t, stride, _ = eff.schedule
        shape = f"linear, warmup {w}, " + (f"{t} steps to 0" if t is not None else "never reaches its peak") + (
            f", {stride} scheduler steps per optimizer step" if stride > 1 else "") + (
            f"; the recipe's warmup of {warmup} steps is ignored" if w == 0 and warmup > 0 else "")
        mark = "=" if (w, t, stride) == (warmup, total, 1) else ("+" if warmup == 0 and w > 0 and t == total and stride == 1 else "!")
    rows.append(Row("schedule", want, f"{shape} ({len(steps)} optimizer steps)", mark))
    decays = {}
    trains = set(obs.trainable_at_step if obs.trainable_at_step is not None else obs.trainable)
    for g in obs.groups:
        names = [n for n in g["names"] if n in trains]  # a frozen tensor in a group is never updated, nor decayed
        if not names:
            continue
        kind = "bias/LayerNorm" if all(exempt(n) for n in names) else "weight"
        decays.setdefault((g["weight_decay"], kind), 0)
        decays[(g["weight_decay"], kind)] += len(names)
    told = ", ".join(f"{d:g} on {n} {kind} tensors" for (d, kind), n in sorted(decays.items(), key=lambda x: x[0][1]))
    rows.append(Row("weight decay", f"{recipe.weight_decay:g}", told or "no param group",
                    "=" if all(math.isclose(d, recipe.weight_decay) or (kind != "weight" and d == 0) for d, kind in decays) else "!"))
    eff.clip = infer_clip(steps)
    rows.append(Row("clipping", _fmt(recipe.max_grad_norm), eff.clip.describe(),
                    "+" if eff.clip.norm is not None and recipe.max_grad_norm is None else
                    ("!" if eff.clip.scale is not None or eff.clip.altered else "=")))
    # -- the data ---------------------------------------------------------------------------------
    groups, trailing = observed_groups(run) if steps else ([], [])
    sizes = [len(g) for g in groups]
    aligned = bool(groups) and groups == expected_groups(run) and not trailing
    shown = "/".join(map(str, sorted(set(sizes)))) if aligned else " ".join(map(str, sizes))
    rows.append(Row("accumulation", f"{recipe.grad_accum} micro-batch(es) per step",
                    f"{shown or 0} micro-batch(es) per step" + (f", {len(trailing)} never stepped" if trailing else ""),
                    "=" if aligned else "!"))
    epochs = epoch_rows(run)
    rows.append(Row("epochs", f"{recipe.epochs}", f"{len(epochs)}", "=" if len(epochs) == recipe.epochs else "!"))
    batch = max((f.shape[0] for f in obs.train_forwards() if f.shape), default=0)
    rows.append(Row("batch size", f"{recipe.batch_size}", f"{batch}", "=" if batch == recipe.batch_size else "!"))
    per_epoch = sorted({len(e) for e in epochs})
    n_train = len(battery.train_labels)
    first_of = (f" (the first of {several['count']} models)" if run is not whole else
                f" ({len(held)} held out as the loop's validation split)" if held else "")
    rows.append(Row("rows per epoch", f"{n_train}", ("/".join(map(str, per_epoch)) or "0") + first_of,
                    "=" if per_epoch == [n_train] else "!"))
    # -- the model --------------------------------------------------------------------------------
    start = list(obs.trainable)
    at_step = obs.trainable_at_step if obs.trainable_at_step is not None else start
    eff.frozen = [n for n in start if n not in set(at_step)]
    all_names = [n for n, _ in battery.fresh_model(0).named_parameters()]
    eff.frozen_prefixes = module_prefixes(eff.frozen, all_names)
    trains = set(at_step)
    eff.added = [n for n in obs.added if n in trains]  # tensors the loop added and trains (LoRA, a head's copy)
    updated = set().union(*(s.updated for s in steps)) if steps else set()
    idle = [n for n in at_step if n not in updated]
    if eff.added:
        added = set(eff.added)
        own = [n for n in at_step if n not in added]
        trained = (f"{sum(n in updated for n in eff.added)} tensors the loop added ({describe_added(eff.added)})"
                   f" and {sum(n in updated for n in own)} of the model's {len(start)}")
    else:
        trained = f"{len(at_step) - len(idle)} of {len(start)} tensors"
    if eff.frozen:
        trained += f"; frozen by the loop: {len(eff.frozen)} ({', '.join(eff.frozen_prefixes[:3])}{', ...' if len(eff.frozen_prefixes) > 3 else ''})"
    if idle:
        trained += f"; {len(idle)} trainable but never updated (e.g. {idle[0]})"
    rows.append(Row("trained tensors", f"all {len(start)}", trained, "+" if eff.frozen or eff.added else ("!" if idle else "=")))
    eff.loss = infer_loss(battery, run)
    form = eff.loss.form
    same = max(SAME, fit_tolerance(obs))  # under bf16 the row weights are read off gradients rounded to bf16
    weighted = bool(eff.loss.scale) and any(abs(x - 1) > same for x in eff.loss.scale) and not (form and form.class_weights)
    rows.append(Row("loss", "mean cross-entropy over each step's rows", eff.loss.describe(),
                    "!" if form is None or weighted else ("=" if form.plain else "+")))
    eff.dropout_start, eff.dropout = obs.dropout, obs.dropout_at_train
    rows.append(Row("dropout", f"{obs.dropout:g} (the model's)", "no training forward" if eff.dropout is None else f"{eff.dropout:g}",
                    "=" if eff.dropout == obs.dropout else "+"))
    # -- evaluation and the weights -------------------------------------------------------------
    passes, selection = scored_passes(run, held)  # passes over the held-out rows: the loop's model selection, shown apart
    kinds = []
    for p in passes:
        splits = {r[0] if r else "unknown" for f in p for r in f.rows}
        mode = "eval" if all(not f.training for f in p) else "train"
        kinds.append(f"{'+'.join(sorted(splits))} in {mode} mode")
    # A pass over the training rows beside the validation one (training accuracy) is an extra; anything else differs.
    extra = kinds and all(k in ("validation in eval mode", "train+validation in eval mode") for k in kinds)
    sanity = sanity_rows(run)
    seen = f"{len(passes)} pass(es): " + "; ".join(dict.fromkeys(kinds)) + (f" (a sanity check of {sanity} rows before training)" if sanity else "") + (
        f"; {selection} pass(es) over its {len(held)} held-out training rows" if selection else "")
    rows.append(Row("evaluation", "validation, eval mode", seen if passes else "none",
                    "=" if kinds and all(k == "validation in eval mode" for k in kinds) and not selection else ("+" if extra or selection else "!")))
    rows.append(Row("models", "1, trained once over every row", several["describe"] if several else "1", "+" if several else "="))
    eff.moved = dict(obs.moved)
    moved = {k: v for k, v in eff.moved.items() if v > MOVED}
    where = ", ".join(("after the last step" if k == "end" else f"between steps {k} and {k + 1}") + f" ({v:.1e})" for k, v in moved.items())
    rows.append(Row("weights outside the optimizer", "unchanged", f"changed {where}" if moved else "unchanged", "+" if moved else "="))
    return eff


def format_effective(eff: EffectiveRecipe) -> str:
    """The effective recipe as a short table: what, the recipe, what the loop did (+ extra, ! differs)."""
    if eff.error:
        return f"effective recipe: {eff.error}"
    width = max(len(r.name) for r in eff.rows)
    lines = ["effective recipe (base run; + an extra the recipe never asked for, ! differs from the recipe):"]
    for r in eff.rows:
        lines.append(f"  {r.mark} {r.name:<{width}}  {r.observed}" + ("" if r.mark == "=" else f"  [recipe: {r.recipe}]"))
    return "\n".join(lines)
