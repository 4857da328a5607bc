"""Check 11 (gpu): fp16 with a GradScaler clips after unscaling, and a skipped step does not advance the schedule.

The battery makes the first backward's gradients infinite (a tensor hook on one parameter),
so the GradScaler must skip that optimizer step. Observed by the optimizer hook: one step
fewer than the recipe's total; the lr of real step j equals the closed form at j (a schedule
advanced on the skipped step is one step ahead); every applied gradient has norm
max_grad_norm (clipping the scaled gradients leaves them ~scale times smaller).
"""

from __future__ import annotations

import math

from mrpc_check.checks.facts.schedule import CLIP, expected_steps, linear_lr
from mrpc_check.checks.verdict import check, crashed, fail, ok, skip


def fp16_recipe(battery):
    return battery.base.replace(mixed_precision="fp16", device="cuda", max_grad_norm=CLIP, warmup_steps=0)


@check("mixed_precision", tier="gpu", oracle="optimizer hook: real steps, their lr and gradient norm under fp16 with a forced overflow")
def check_mixed_precision(battery):
    """fp16: clipping acts on unscaled gradients; a step the GradScaler skipped does not advance the schedule."""
    import torch

    if not torch.cuda.is_available():
        return skip("mixed_precision", "needs CUDA (fp16 GradScaler): run on a machine with a GPU and a CUDA build of torch")
    recipe = fp16_recipe(battery)
    run = battery.run("fp16", recipe, poison_first_backward=True)
    if (v := crashed("mixed_precision", run)) is not None:
        return v
    steps = run.observation.steps
    total = expected_steps(recipe)
    if len(steps) != total - 1:
        return fail("mixed_precision", f"{len(steps)} optimizer steps applied with one overflow forced, expected {total - 1}",
                    "the overflowing step was applied (no GradScaler?)", "use torch.amp.GradScaler (or Accelerate) with fp16")
    for j, record in enumerate(steps):
        want = linear_lr(recipe, j, total)
        if not math.isclose(record.lrs[0], want, rel_tol=1e-6, abs_tol=1e-12):
            return fail("mixed_precision", f"real step {j + 1} used lr {record.lrs[0]:.6g}, closed form {want:.6g}",
                        "a step the GradScaler skipped advanced the schedule",
                        "call scheduler.step() only when the optimizer stepped (scale unchanged, or not accelerator.optimizer_step_was_skipped)")
    worst = max(abs(s.grad_norm - CLIP) / CLIP for s in steps)
    if worst > 1e-2:
        return fail("mixed_precision", f"applied gradient norms {min(s.grad_norm for s in steps):.3g}..{max(s.grad_norm for s in steps):.3g}, "
                    f"max_grad_norm {CLIP:g}", "clipping before unscaling: the scaled gradients were clipped",
                    "call scaler.unscale_(optimizer) before clip_grad_norm_ (accelerator.clip_grad_norm_ does it)")
    return ok("mixed_precision", f"overflow skipped ({len(steps)} of {total} steps applied), schedule not advanced by it, "
              f"gradient norms within {worst:.1e} of max_grad_norm")
