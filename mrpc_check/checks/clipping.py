"""Check: the global gradient norm each optimizer step applies, against the recipe's clip and against no clip at all.

Bugs caught: ``max_grad_norm`` ignored, applied before the gradients are complete or unscaled, or
to a scaled norm; a clip fixed in the loop that the recipe never asked for (an extra: named with
its norm and the steps it bound at, a warning unless ``adapter.extras`` declares it).
Oracle: the norm observed at every step of the variant run (clip 1e-3, binding); on the base run
(no clip asked), the gradient backward produced (tensor hooks) against the one each step applied
(:func:`mrpc_check.checks.effective.infer_clip`).
"""

from __future__ import annotations

from mrpc_check.checks.effective import effective_recipe
from mrpc_check.checks.facts.clip import infer_clip
from mrpc_check.checks.facts.schedule import CLIP, clip_recipe
from mrpc_check.checks.verdict import Verdict, check, crashed, declared_absent, fail, ok


@check("clipping", oracle="gradient norm observed at each optimizer step against max_grad_norm; the gradient backward "
       "produced against the one each step applied")
def check_clipping(battery):
    """With max_grad_norm set, every step applies gradients of exactly that global norm; without it, no clip at all.

    The base run asks for no clipping: a loop that clips there anyway (a norm fixed in the loop) is
    named with the norm and the steps it bound at, a warning unless ``adapter.extras`` declares it.
    """
    base = battery.base_run()
    if (v := crashed("clipping", base)) is not None:
        return v
    found = effective_recipe(battery).clip
    declared = battery.caps.extra("max_grad_norm")
    seen = f"base run (no clipping asked): {found.describe()}"
    extra = None
    if declared is not None:
        if found.norm is not None and abs(found.norm - declared) > 1e-3 * declared:
            return fail("clipping", seen, f"declared a clip at {declared:g} (adapter.extras) but the loop clips at {found.norm:.4g}",
                        "clip at the declared norm, or correct adapter.extras['max_grad_norm']")
        if found.norm is None and found.largest > declared * (1 + 1e-3):
            return fail("clipping", seen, f"declared a clip at {declared:g} (adapter.extras) but gradients of norm up to "
                        f"{found.largest:.3g} were applied unclipped",
                        f"call clip_grad_norm_(model.parameters(), {declared:g}) before optimizer.step(), or correct adapter.extras")
    elif found.norm is not None:
        extra = Verdict("clipping", "warn", f"{seen}; the applied norm equals {found.norm:.4g} wherever the raw one was larger",
                        f"the loop clips at norm {found.norm:.4g} (bound at {found.binding} of {found.steps} steps) though the recipe "
                        "has no clipping",
                        "take the norm from recipe.max_grad_norm (no clip when it is None) and keep 'max_grad_norm' in "
                        f"adapter.supports, or declare the choice: adapter.extras = {{'max_grad_norm': {found.norm:.4g}}}", extra=True)
    if (v := declared_absent(battery, "clipping", "max_grad_norm", "max_grad_norm")) is not None:
        if extra is not None:
            return extra
        if declared is not None and found.norm is not None:
            return Verdict("clipping", "pass", f"{seen}, as declared in adapter.extras", extra=True)
        v.figure += f"; {seen}"
        return v
    run = battery.run("clip", clip_recipe(battery))
    if (v := crashed("clipping", run)) is not None:
        return v
    norms = [s.grad_norm for s in run.observation.steps]
    worst = max((abs(n - CLIP) / CLIP for n in norms), default=float("inf"))
    if norms and worst > 1e-3:
        from mrpc_check.checks.facts.optimizer import membership_explains

        explained = membership_explains(battery, fail("clipping", "", "", ""))
        if explained.caused_by:
            explained.figure = f"global gradient norms at the steps {min(norms):.3g}..{max(norms):.3g}, max_grad_norm {CLIP:g}"
            return explained
        ratio = sorted(norms)[len(norms) // 2] / CLIP
        # clip_grad_norm_'s eps (1e-6) moves a small step's norm by ~3e-4 of it: a constant ratio within 1e-3.
        if abs(ratio - 1) > 1e-3 and max(abs(n / CLIP - ratio) for n in norms) < 1e-3 * ratio:
            return fail("clipping", f"every global gradient norm at the steps is {ratio:.4g}x max_grad_norm {CLIP:g}",
                        f"clipped to {ratio:.3g}x max_grad_norm, not to max_grad_norm itself",
                        "pass recipe.max_grad_norm unchanged to clip_grad_norm_")
    if not norms or worst > 1e-3:
        high = max(norms, default=0.0) > CLIP * 1.001
        above = sum(n > CLIP * 1.001 for n in norms)
        if norms and above == len(norms):
            fixed = infer_clip(run.observation.steps).norm
            if fixed is not None:
                return fail("clipping", f"run 'clip' (max_grad_norm {CLIP:g}): the applied norm equals {fixed:.4g} wherever the raw "
                            f"one was larger; {seen}",
                            f"ignores recipe.max_grad_norm: the loop clips at a fixed {fixed:.4g} whatever the recipe says",
                            "call clip_grad_norm_(model.parameters(), recipe.max_grad_norm) (no clip when it is None), or leave "
                            f"'max_grad_norm' out of adapter.supports and declare adapter.extras = {{'max_grad_norm': {fixed:.4g}}}")
            return fail("clipping", f"global gradient norms at the steps {min(norms):.3g}..{max(norms):.3g}, max_grad_norm {CLIP:g}",
                        f"ignores recipe.max_grad_norm (max_grad_norm not applied: all {len(norms)} steps above {CLIP:g}): if the "
                        "loop does not clip by design, declare it (supports without 'max_grad_norm')",
                        "call clip_grad_norm_(model.parameters(), recipe.max_grad_norm) right before optimizer.step(), "
                        "or leave 'max_grad_norm' out of adapter.supports")
        return fail("clipping", f"global gradient norms at the steps {min(norms, default=0):.3g}..{max(norms, default=0):.3g}, max_grad_norm {CLIP:g}",
                    "max_grad_norm not applied on every step" if high else "clipped before the gradients were complete or unscaled",
                    "call clip_grad_norm_(model.parameters(), max_grad_norm) after the last backward of the group "
                    "(after scaler.unscale_ under fp16), right before optimizer.step()")
    if extra is not None:
        return extra
    figure = f"{len(norms)} steps, every global gradient norm within {worst:.1e} of max_grad_norm {CLIP:g}; {seen}"
    if declared is not None and found.norm is not None:
        return Verdict("clipping", "pass", f"{figure}, as declared in adapter.extras", extra=True)
    return ok("clipping", figure)
