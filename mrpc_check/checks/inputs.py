"""Checks 1-2: what every forward receives, and the mode it runs in (observed by forward hooks).

Bugs caught: attention mask or token types dropped, an altered mask; no ``model.train()``
after an evaluation, no ``model.eval()`` for evaluation. Training forwards without labels are a
loop that computes its loss from the logits itself (a loop that needs the model's loss and
passes no labels crashes on ``None.backward()``): allowed here, and the loss it computes is the
``loss`` check's and the gradient checks' to judge.
Oracle: observation of each forward call from outside the loop.
"""

from __future__ import annotations

from mrpc_check.checks.harness import N_TRAIN
from mrpc_check.checks.verdict import check, crashed, fail, ok


def _epoch_of(run, index: int) -> int:
    """1-based training epoch of training forward ``index``, by the rows seen before it."""
    seen = sum(len(f.rows) for f in run.observation.train_forwards()[:index])
    return seen // N_TRAIN + 1


@check("inputs", oracle="forward hooks: the keyword inputs of every forward")
def check_inputs(battery):
    """Every forward receives attention_mask (and token_type_ids where the model has them); training forwards get labels."""
    run = battery.base_run()
    if (v := crashed("inputs", run)) is not None:
        return v
    forwards = run.observation.forwards
    if not forwards:
        return fail("inputs", "no forward call observed", "the model handed to the adapter was never called",
                    "train the model object the adapter receives (not a copy or a freshly loaded one)")
    for i, f in enumerate(forwards):
        kind = "training" if f.grad_enabled else "evaluation"
        if "attention_mask" not in f.keys:
            return fail("inputs", f"{kind} forward {i + 1} of {len(forwards)} had no attention_mask",
                        "attention mask dropped: padding tokens are attended to",
                        "pass the collator's attention_mask to the model: model(**batch)")
        if battery.has_token_types and "token_type_ids" not in f.keys:
            return fail("inputs", f"{kind} forward {i + 1} of {len(forwards)} had no token_type_ids",
                        "token types dropped: both sentences of the pair get segment 0",
                        "pass the tokenizer's token_type_ids to the model: model(**batch)")
        if not f.mask_ok:
            return fail("inputs", f"{kind} forward {i + 1}: attention_mask does not mark exactly the real tokens",
                        "attention mask altered", "pass the collator's attention_mask unchanged")
        if any(r is None for r in f.rows):
            return fail("inputs", f"{kind} forward {i + 1}: a row matches no dataset example",
                        "input_ids altered between dataset and model", "feed the collator's input_ids unchanged")
    n_train = len(run.observation.train_forwards())
    unlabelled = sum("labels" not in f.keys for f in run.observation.train_forwards())
    labels = ("training ones with labels" if not unlabelled else
              f"{unlabelled} training ones without labels (the loop computes the loss from the logits: see `loss`)")
    return ok("inputs", f"{n_train} training and {len(forwards) - n_train} evaluation forwards: all with attention_mask"
              + (", token_type_ids" if battery.has_token_types else "") + f"; {labels}")


@check("modes", oracle="forward hooks: module.training at every forward")
def check_modes(battery):
    """Training forwards run in train mode in every epoch, also after an evaluation; evaluation forwards in eval mode."""
    run = battery.base_run()
    if (v := crashed("modes", run)) is not None:
        return v
    train = run.observation.train_forwards()
    for i, f in enumerate(train):
        if not f.training:
            epoch = _epoch_of(run, i)
            before = run.observation.forwards[: run.observation.forwards.index(f)]
            if any(g.training for g in before):  # it was in train mode once: an evaluation left it in eval mode
                return fail("modes", f"training forward {i + 1} (epoch {epoch}) ran in eval mode after an evaluation",
                            "no model.train() after evaluation",
                            "call model.train() at the start of every epoch: evaluation leaves the model in eval mode")
            fix = "call model.train() before training: from_pretrained hands the model over in eval mode"
            if run.observation.closure_steps:  # optimizer.step(closure): Lightning's automatic optimization
                fix += (" and Lightning's Trainer does not switch it (it warns 'Found N module(s) in eval mode at the start "
                        "of training'): call self.model.train() after from_pretrained in the LightningModule's __init__, or in its "
                        "on_train_start")
            return fail("modes", f"training forward {i + 1} (epoch {epoch}) ran in eval mode, and no forward before it in "
                        "train mode", "model never switched to train mode", fix)
    evals = run.observation.eval_forwards()
    for i, f in enumerate(evals):
        if f.training:
            return fail("modes", f"evaluation forward {i + 1} of {len(evals)} ran in train mode",
                        "no model.eval() for evaluation: dropout stays on while predicting",
                        "call model.eval() before evaluating, model.train() after")
    between = sum(1 for i, f in enumerate(run.observation.forwards)
                  if not f.grad_enabled and any(g.grad_enabled for g in run.observation.forwards[i:]))
    return ok("modes", f"{len(train)} training forwards in train mode, {len(evals)} evaluation forwards in eval mode "
              f"({between} of them between training epochs)")
