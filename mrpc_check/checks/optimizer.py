"""Check: the optimizer the loop built: which tensors it trains, at what peak rate, with what decay.

Oracle: the param groups of every optimizer at its first step (torch's global optimizer hook),
read against the model's own parameters (``requires_grad``) and the recipe. Two runs are read:
the base one (the recipe's weight decay, 0) and the variant one (weight decay 0.1, where the
loop declares weight decay).

Bugs caught: a trainable tensor in no group (a head left out: it never trains), a frozen tensor
or a foreign one in a group, a tensor in two optimizers; a peak rate other than the recipe's;
weight decay other than the recipe's, ``torch.optim.AdamW``'s default ``weight_decay=0.01``
named when that is what happened (``transformers.AdamW``, which the walkthrough used, defaulted
to 0.0); biases and LayerNorm weights decayed (a warning: the convention of BERT's recipe and of
``transformers.Trainer`` exempts them).
"""

from __future__ import annotations

import math
from collections import Counter

from mrpc_check.checks.facts.optimizer import MEMBERSHIP, exempt, membership_explains  # noqa: F401  (importable here too)
from mrpc_check.checks.verdict import check, crashed, fail, ok, skip, warn

VARIANT_DECAY = 0.1  # the variant run's weight decay: far from torch's default 0.01 and from 0
TORCH_DEFAULT_DECAY = 0.01  # torch.optim.AdamW(weight_decay=0.01) unless told otherwise


def decay_recipe(battery):
    return battery.base.replace(weight_decay=VARIANT_DECAY)


def _decays(groups: list, trained=None) -> dict:
    """Parameter name -> the weight decay its group applies; only the tensors in ``trained`` when given.

    A frozen tensor in a group gets no gradient and so no update, decay included (AdamW skips it): a LoRA
    loop's ``AdamW(model.parameters())`` holds the frozen base beside the adapters, and only these decay.
    """
    keep = set(trained) if trained is not None else None
    return {n: g["weight_decay"] for g in groups for n in g["names"] if keep is None or n in keep}


def trained_names(observation) -> list:
    """The tensors the loop trains: trainable at the first optimizer step (the ones it added included)."""
    return observation.trainable_at_step if observation.trainable_at_step is not None else observation.trainable


def _decay_problem(groups: list, want: float, declared: bool, trained=None):
    """(figure, bug, fix) when a trainable tensor that should decay by ``want`` does not; else None."""
    decays = _decays(groups, trained)
    plain = {n: d for n, d in decays.items() if not exempt(n)}
    wrong = {n: d for n, d in plain.items() if not math.isclose(d, want, rel_tol=1e-9, abs_tol=1e-12)}
    if not wrong:
        return None
    seen = Counter(round(d, 12) for d in wrong.values())
    value, count = seen.most_common(1)[0]
    figure = f"weight decay {value:g} on {count} of {len(plain)} weight tensors, recipe {want:g}"
    if want == 0.0 and math.isclose(value, TORCH_DEFAULT_DECAY) and groups and groups[0]["type"] == "AdamW":
        return (figure, "torch.optim.AdamW's default weight_decay=0.01 applies (the recipe says 0.0; transformers.AdamW, "
                "which the walkthrough used, defaulted to 0.0)",
                "pass weight_decay=recipe.weight_decay to torch.optim.AdamW (0.0 for the walkthrough's recipe)")
    if want > 0 and value in (0.0, TORCH_DEFAULT_DECAY):
        default = "torch's default 0.01" if value == TORCH_DEFAULT_DECAY else "none"
        return (figure, f"ignores recipe.weight_decay ({default} applied for {want:g}): if the loop has no weight decay "
                "by design, declare it (supports without 'weight_decay')",
                "pass recipe.weight_decay to the optimizer's groups, or leave 'weight_decay' out of adapter.supports")
    return (figure, f"weight decay {value:g}, not the recipe's {want:g}", "pass recipe.weight_decay to the optimizer's groups")


@check("optimizer", oracle="optimizer pre-hook: param groups at the first step, against the model's parameters and the recipe")
def check_optimizer(battery):
    """Every trainable tensor in exactly one group, none frozen or foreign; peak lr and weight decay as the recipe says."""
    base = battery.base_run()
    if (v := crashed("optimizer", base)) is not None:
        return v
    groups = base.observation.groups
    if not groups:
        return fail("optimizer", "no optimizer step observed", "the optimizer never stepped", "call optimizer.step()")
    from mrpc_check.checks.observe import models_in_run

    if models_in_run(base) is not None:  # several models, one optimizer each: the first model's optimizer is judged
        groups = [g for g in groups if g["optimizer"] == 0]
    # Trainable when the optimizer first steps: tensors the loop froze itself are the `frozen` check's choice to
    # name, and a frozen tensor in a group is harmless (it gets no gradient, so the optimizer skips it).
    start = base.observation.trainable
    trainable = trained_names(base.observation)
    counted = Counter(n for g in groups for n in g["names"])
    missing = [n for n in trainable if n not in counted]
    twice = [n for n, c in counted.items() if c > 1]
    frozen = [n for g in groups for n in g["frozen"] if n not in start]
    foreign = sum(g["foreign"] for g in groups)
    if missing:
        return fail("optimizer", f"{len(missing)} of {len(trainable)} trainable tensors in no param group, e.g. {missing[0]}",
                    f"trainable parameters left out of the optimizer: they never train ({MEMBERSHIP} are not the model's trainable ones)",
                    "build the optimizer from model.named_parameters() (every tensor with requires_grad), after any re-wrapping "
                    "(after get_peft_model under PEFT)")
    if twice:
        return fail("optimizer", f"{len(twice)} tensors in two optimizers' groups, e.g. {twice[0]}",
                    f"a parameter is stepped twice per step ({MEMBERSHIP} overlap)", "give every parameter to exactly one optimizer and group")
    if frozen or foreign:
        what = f"{len(frozen)} frozen tensors (requires_grad=False), e.g. {frozen[0]}" if frozen else f"{foreign} tensors that are not the model's"
        return fail("optimizer", f"{what} in the optimizer's groups",
                    f"the optimizer holds tensors that are not the model's trainable parameters (a copy of the model, or frozen ones: {MEMBERSHIP} are wrong)",
                    "build the optimizer from the parameters of the model being trained, with requires_grad")
    peak = max((g["initial_lr"] for g in groups), default=0.0)
    want = base.recipe.lr
    if not math.isclose(peak, want, rel_tol=1e-6):
        return fail("optimizer", f"peak learning rate {peak:g} (initial_lr of the param groups), recipe {want:g}",
                    "the optimizer's learning rate is not the recipe's", "pass lr=recipe.lr to the optimizer")
    problem = _decay_problem(groups, base.recipe.weight_decay, battery.declares("weight_decay"), trainable)
    if problem:
        return fail("optimizer", *problem)
    added_by_loop = set(base.observation.added)
    added = [n for n in trainable if n in added_by_loop]
    tensors = (f"{len(trainable)} trainable tensors" + (f" ({len(added)} added by the loop)" if added else "")
               + f" in {len(groups)} group(s), peak lr {peak:g}")
    if not battery.declares("weight_decay"):
        return ok("optimizer", f"{tensors}, weight decay 0 as the recipe says (weight decay declared absent: not varied)")
    variant = battery.run("decay", decay_recipe(battery))
    if (v := crashed("optimizer", variant)) is not None:
        return v
    problem = _decay_problem(variant.observation.groups, VARIANT_DECAY, True, trained_names(variant.observation))
    if problem:
        return fail("optimizer", f"run 'decay': {problem[0]}", *problem[1:])
    decays = _decays(variant.observation.groups, trained_names(variant.observation))
    decayed_exempt = [n for n, d in decays.items() if exempt(n) and d > 0]
    n_exempt = sum(exempt(n) for n in decays)
    if decayed_exempt:
        share = sum(1 for _ in decayed_exempt) / max(1, n_exempt)
        return warn("optimizer", f"at weight decay {VARIANT_DECAY:g}: {len(decayed_exempt)} of {n_exempt} bias/LayerNorm tensors "
                    f"decayed ({share:.0%}), e.g. {decayed_exempt[0]}",
                    "biases and LayerNorm weights decayed (BERT's recipe and transformers.Trainer exempt them)",
                    "two param groups: weight_decay=recipe.weight_decay for the rest, 0.0 for names ending in 'bias' "
                    "and LayerNorm weights")
    return ok("optimizer", f"{tensors}, weight decay 0 at the recipe and {VARIANT_DECAY:g} on the {len(decays) - n_exempt} "
              f"weight tensors when asked, biases and LayerNorm exempt")
