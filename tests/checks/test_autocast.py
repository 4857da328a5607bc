"""bf16 autocast on CPU: a correct loop is judged right, and its planted bugs are still caught.

Under autocast the gradient oracles recompute each micro-batch as a correct loop does at that precision (one padded
batch, the mask passed, the same autocast), which a correct bf16 loop matches bit for bit; padding is read on the
first steps' gradients; the loss fit's tolerance is bf16's epsilon. A bf16 logits tensor is accepted as predictions.
"""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from mrpc_check.checks.battery import root_causes, run_battery

CHECKS = ["inputs", "padding", "grouping", "gradients_cleared", "accumulation", "loss"]


def bf16_loop(*, mask=True, zero_grad=True, scale_loss=True, logits_out=False):
    """The course's manual loop with accumulation, its forward under torch.autocast("cpu", dtype=torch.bfloat16)."""

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        from transformers import get_scheduler

        torch.manual_seed(recipe.seed)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator,
                            generator=torch.Generator().manual_seed(recipe.seed))
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps = math.ceil(len(loader) / recipe.grad_accum) * recipe.epochs
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=recipe.warmup_steps or math.ceil(recipe.warmup_ratio * steps),
                                  num_training_steps=steps)
        model.train()
        for _ in range(recipe.epochs):
            batches = list(loader)
            for start in range(0, len(batches), recipe.grad_accum):
                group = batches[start : start + recipe.grad_accum]
                n = sum(len(b["labels"]) for b in group)
                for batch in group:
                    if not mask:
                        batch = {k: v for k, v in batch.items() if k != "attention_mask"}
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        loss = model(**batch).loss
                    (loss * (len(batch["labels"]) / n if scale_loss else 1.0)).backward()
                if recipe.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
                optimizer.step()
                scheduler.step()
                if zero_grad:
                    optimizer.zero_grad()
        model.eval()
        logits = []
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for batch in DataLoader(eval_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator):
                logits.append(model(**batch).logits)
        logits = torch.cat(logits)  # bfloat16
        return logits if logits_out else logits.argmax(-1).tolist()

    return adapter


def test_a_correct_bf16_loop_passes_the_gradient_and_padding_checks(bert):
    verdicts = run_battery(bf16_loop(logits_out=True), bert, checks=CHECKS)  # bf16 logits returned: accepted
    assert not [v.message() for v in verdicts if v.status != "pass"]
    row = next(r for r in verdicts.effective.rows if r.name == "loss")
    assert row.mark == "=", row.observed


def test_the_autocast_is_observed(bert):
    from mrpc_check.checks.harness import Battery

    with Battery(bf16_loop(), bert) as battery:
        observation = battery.base_run().observation
        assert observation.autocast == ("cpu", "bfloat16") and observation.logits_dtype == "bfloat16"


@pytest.mark.parametrize("twin, check", [
    (dict(mask=False), "inputs"),
    (dict(zero_grad=False), "gradients_cleared"),
    (dict(scale_loss=False), "accumulation"),
])
def test_planted_bugs_still_fail_under_bf16(bert, twin, check):
    verdicts = run_battery(bf16_loop(**twin), bert, checks=CHECKS)
    got = {v.check: v for v in verdicts}
    assert got[check].status == "fail" and check in root_causes(verdicts), [v.message() for v in verdicts]


def test_a_mask_dropped_fails_padding_under_bf16_on_its_own_oracle(bert):
    """Not only through `inputs`: the padded run's first gradients differ (4.7e-3 and 0.37 against 1.4e-7 when right)."""
    got = {v.check: v for v in run_battery(bf16_loop(mask=False), bert, checks=["padding"])}
    assert got["padding"].status == "fail" and "step 2:" in got["padding"].figure, got["padding"].message()
    figure = got["padding"].figure
    step2 = float(figure.split("step 2: ")[1].split(" ")[0])
    assert step2 > 1e-2
