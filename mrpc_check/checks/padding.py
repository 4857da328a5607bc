"""Check 3: padding invariance, a metamorphic relation.

The same run with every batch padded to a multiple of 64 must give the same losses and
weights: the attention mask makes padding invisible, up to float reassociation in the wider
matrices. Measured with the correct loops on the tiny models (fp32, CPU): largest loss
difference ~1e-6 and largest weight difference ~1e-6 after 6 AdamW steps; the tolerance is
1e-4 on both, two orders above that and far below what a dropped mask does (~1e-1). Under bf16/fp16 autocast the
first steps' raw gradients are compared instead (see ``_autocast_verdict``): at that precision losses and weights
drift by rounding alone.

Bugs caught: attention mask dropped or ignored, a loop that pads with attended tokens, a
loop that ignores the collator it is given.
"""

from __future__ import annotations

from mrpc_check.checks.harness import max_weight_difference
from mrpc_check.checks.verdict import check, crashed, fail, ok

MULTIPLE = 64
LOSS_TOL = 1e-4
WEIGHT_TOL = 1e-4


AUTOCAST_STEPS = (1, 2)  # under autocast: the raw gradients of these steps, padded against not (same rows, same start)


def _autocast_verdict(battery, base, padded):
    """Padding invariance under bf16/fp16 autocast, read on the gradients of the first steps.

    Losses and final weights are no oracle at that precision: rounding in the wider matrices, amplified by Adam over
    the run, moved a correct bf16 loop's weights by 1e-4 here. The first steps start from the same weights with the same
    rows, so their raw gradients differ only by padding: a correct bf16 loop's by 1.4e-7 (relative), a dropped mask's
    by 4.7e-3 and 0.37 at steps 1 and 2 (measured on the tiny BERT).
    """
    from mrpc_check.checks.facts.gradients import TOL, flat_gradient, relative_error

    errors = []
    for k in AUTOCAST_STEPS:
        if len(base.observation.steps) < k or len(padded.observation.steps) < k:
            break
        mine, theirs = base.observation.steps[k - 1].raw, padded.observation.steps[k - 1].raw
        if mine is None or theirs is None:
            break
        names = [n for n, g in mine.items() if g is not None and theirs.get(n) is not None]
        if names:
            errors.append((k, relative_error(flat_gradient(theirs, names), flat_gradient(mine, names))))
    if not errors:
        return fail("padding", "no gradient of the first steps observed in both runs", "the optimizer never stepped",
                    "call optimizer.step() on a torch.optim optimizer")
    figure = (f"under {base.observation.autocast[1]} autocast, the first steps' raw gradients padded to {MULTIPLE} against "
              "not: " + ", ".join(f"step {k}: {e:.1e}" for k, e in errors) + f" (relative; tolerance {TOL:g})")
    if max(e for _, e in errors) > TOL:
        from mrpc_check.checks.verdict import extra_explains

        if (v := extra_explains(battery, "padding", "dropout", figure)) is not None:
            return v
        return fail("padding", figure, "padding changes the result: the attention mask is dropped or ignored",
                    "pass attention_mask to every forward, training and evaluation")
    return ok("padding", figure)


@check("padding", oracle="metamorphic: padding to a multiple of 64 changes nothing", rests_on=("inputs",))
def check_padding(battery):
    """The same run with batches padded to a multiple of 64 gives the same losses and weights."""
    from mrpc_check.pipeline.batching import make_collator

    base = battery.base_run()
    autocast = base.observation.autocast
    # Under autocast the padded run's first gradients are copied: they are what is compared (below).
    padded = battery.run("pad64", collator=make_collator(battery.arch.tokenizer, pad_to_multiple_of=MULTIPLE),
                         capture=AUTOCAST_STEPS if autocast else ())
    for run in (base, padded):
        if (v := crashed("padding", run)) is not None:
            return v
    widths = {f.shape[-1] for f in padded.observation.forwards}
    if any(w % MULTIPLE for w in widths):
        return fail("padding", f"batches of width {sorted(widths)} reached the model with a collator padding to {MULTIPLE}",
                    "the loop does not use the collator it is given", "build the DataLoaders with collate_fn=collator")
    if autocast is not None:
        return _autocast_verdict(battery, base, padded)
    a, b = base.observation.train_losses(), padded.observation.train_losses()
    if len(a) != len(b):
        return fail("padding", f"{len(a)} and {len(b)} training forwards observed", "the padded run trained on other batches",
                    "iterate the loader built from the collator given, the same way whatever the padding")
    # A loop that computes its loss from the logits returns none from the model: its weights still tell.
    losses = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    loss_diff = max((abs(x - y) for x, y in losses), default=0.0)
    weight_diff = max_weight_difference(base.model, padded.model)
    figure = (f"largest loss difference {loss_diff:.1e}, " if losses else "no model loss (computed by the loop), ") + \
        f"weight difference {weight_diff:.1e} (tolerance {LOSS_TOL:g})"
    if loss_diff > LOSS_TOL or weight_diff > WEIGHT_TOL:
        from mrpc_check.checks.verdict import extra_explains

        if (v := extra_explains(battery, "padding", "dropout", figure)) is not None:
            return v
        return fail("padding", figure, "padding changes the result: the attention mask is dropped or ignored",
                    "pass attention_mask to every forward, training and evaluation")
    return ok("padding", figure)
