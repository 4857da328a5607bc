"""The effective recipe (mrpc_check/checks/effective.py) and the extras checks (mrpc_check/checks/extras.py).

Each inference is held to a closed form on data built here (a clip, a constant rescale, label
smoothing and class weights through torch's own cross-entropy), then to what our loops were
written to do, then to the verdicts a declared or undeclared extra gets.
"""

import math
from types import SimpleNamespace

import pytest
import torch

from mrpc_check.checks.effective import (MOVED, ClipFinding, infer_clip, infer_loss, module_prefixes)
from mrpc_check.checks.observe import ForwardRecord, Observation, StepRecord

LOOPS = ["manual", "accelerate", "trainer", "example"]


def _step(raw: torch.Tensor, applied: torch.Tensor) -> StepRecord:
    return StepRecord(lrs=[1e-3], weight_decays=[0.0], grad_norm=float(applied.norm()), raw_norm=float(raw.norm()),
                      raw_dot=float(raw @ applied))


def _clipped(raw: torch.Tensor, norm: float) -> torch.Tensor:
    return raw * min(1.0, norm / (float(raw.norm()) + 1e-6))  # clip_grad_norm_'s formula, eps included


class TestClip:
    def raws(self, scales=(0.3, 0.8, 1.7, 2.5, 0.6)):
        g = torch.Generator().manual_seed(0)
        return [torch.randn(50, generator=g, dtype=torch.float64) / 7 * s for s in scales]

    def test_a_clip_is_read_with_its_norm_and_the_steps_it_bound_at(self):
        raws = self.raws()
        steps = [_step(r, _clipped(r, 1.0)) for r in raws]
        found = infer_clip(steps)
        bound = sum(float(r.norm()) > 1.0 for r in raws)
        assert bound >= 2 and found.norm == pytest.approx(1.0, rel=1e-5)
        assert (found.binding, found.steps, found.scale, found.altered) == (bound, 5, None, 0)
        assert "clips at global norm 1" in found.describe()

    def test_no_change_is_no_clip_and_says_what_would_not_show(self):
        raws = self.raws()
        found = infer_clip([_step(r, r.clone()) for r in raws])
        assert found.norm is None and found.scale is None and found.altered == 0
        assert found.largest == pytest.approx(max(float(r.norm()) for r in raws))
        assert "a clip above" in found.describe()

    def test_a_constant_rescale_is_not_a_clip(self):
        found = infer_clip([_step(r, r * 0.5) for r in self.raws()])
        assert found.norm is None and found.scale == pytest.approx(0.5)

    def test_a_clip_whose_norms_differ_is_not_a_clip(self):
        # Shrunk at two steps to two different norms (1.0 and 0.9): no single global norm explains both.
        raws = self.raws()
        steps = [_step(r, _clipped(r, 1.0 if i % 2 else 0.9)) for i, r in enumerate(raws)]
        assert infer_clip(steps).norm is None

    def test_one_percent_off_the_common_norm_is_seen(self):
        raws = self.raws()
        steps = [_step(r, _clipped(r, 1.0)) for r in raws]
        big = max(range(len(raws)), key=lambda i: float(raws[i].norm()))
        steps[big] = _step(raws[big], _clipped(raws[big], 1.01))
        assert infer_clip(steps).norm is None

    def test_a_per_tensor_change_is_altered_not_clipped(self):
        raws = self.raws()
        applied = [torch.cat([r[:25] * 0.5, r[25:]]) for r in raws]  # half of the vector scaled: another direction
        found = infer_clip([_step(r, a) for r, a in zip(raws, applied)])
        assert found.norm is None and found.altered == 5

    def test_a_small_step_shrunk_too_is_not_a_clip(self):
        raws = self.raws((0.3, 2.0, 2.5))
        steps = [_step(raws[0], raws[0] * 0.9)] + [_step(r, _clipped(r, 1.0)) for r in raws[1:]]
        assert infer_clip(steps).norm is None

    def test_a_step_above_the_norm_left_whole_is_not_a_clip(self):
        raws = self.raws((0.3, 2.0, 2.5, 3.0))
        norms = [float(r.norm()) for r in raws]
        big = norms.index(max(norms))
        steps = [_step(r, r.clone() if i == big else _clipped(r, 1.0)) for i, r in enumerate(raws)]
        assert infer_clip(steps).norm is None  # a global clip at 1.0 would have bound there as well

    def test_per_tensor_clipping_to_a_common_total_is_not_a_global_clip(self):
        # Each half clipped to norm 1/sqrt(2): the total is 1.0 at every binding step, but the direction changed.
        raws = self.raws((2.0, 2.5, 3.0))
        halves = [torch.cat([_clipped(r[:25], 0.5 ** 0.5), _clipped(r[25:], 0.5 ** 0.5)]) for r in raws]
        found = infer_clip([_step(r, h) for r, h in zip(raws, halves)])
        assert found.norm is None and found.altered == 3


def _loss_run(label_smoothing=0.0, weight=None, scale=1.0, forwards=6, batch=4, seed=0):
    """Forwards whose logit gradients come from torch's cross-entropy, and a stand-in battery that knows the labels."""
    g = torch.Generator().manual_seed(seed)
    labels, records = [], []
    for m in range(forwards):
        logits = (torch.randn(batch, 2, generator=g) * (0.2 + 0.3 * m)).requires_grad_(True)
        y = torch.randint(0, 2, (batch,), generator=g)
        y[0], y[1] = 0, 1  # both classes in every forward
        loss = torch.nn.functional.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing) * scale
        loss.backward()
        rows = [("train", len(labels) + i) for i in range(batch)]
        labels += y.tolist()
        records.append(ForwardRecord(training=True, grad_enabled=True, keys=frozenset({"input_ids", "attention_mask"}),
                                     shape=(batch, 8), rows=rows, steps_before=m, loss=None,
                                     logits=logits.detach(), logit_grad=logits.grad.detach()))
    run = SimpleNamespace(observation=Observation(forwards=records), train_labels=labels)
    battery = SimpleNamespace(label_of=lambda row, labels: labels[row[1]])
    return battery, run


class TestLoss:
    def test_plain_cross_entropy_is_plain_with_the_mean_as_row_weight(self):
        found = infer_loss(*_loss_run())
        assert found.form is not None and found.form.plain and found.residual < 1e-6
        assert found.scale == pytest.approx((1.0, 1.0), rel=1e-4)
        assert not found.by_model and found.rows == 24

    @pytest.mark.parametrize("epsilon", [0.1, 0.05, 0.2])
    def test_label_smoothing_is_read_to_its_value(self, epsilon):
        found = infer_loss(*_loss_run(label_smoothing=epsilon))
        assert found.form.label_smoothing == pytest.approx(epsilon, abs=1e-4) and not found.form.class_weights

    def test_class_weights_are_read_as_their_ratio(self):
        found = infer_loss(*_loss_run(weight=torch.tensor([1.0, 2.5])))
        assert found.form.label_smoothing == 0.0 and found.form.class_weights == pytest.approx((1.0, 2.5), rel=1e-3)

    def test_a_sum_reduction_is_plain_cross_entropy_weighted_by_the_batch(self):
        found = infer_loss(*_loss_run(scale=4.0))
        assert found.form.plain and found.scale == pytest.approx((4.0, 4.0), rel=1e-4)

    def test_a_loss_that_is_no_cross_entropy_is_not_recognised(self):
        battery, run = _loss_run()
        for f in run.observation.forwards:  # a squared-error loss on the probabilities: another gradient
            logits = f.logits.clone().requires_grad_(True)
            torch.softmax(logits, -1)[:, 1].sub(0.5).pow(2).sum().backward()
            f.logit_grad = logits.grad
        found = infer_loss(battery, run)
        assert found.form is None and "no cross-entropy form fits" in found.why


def test_module_prefixes_name_the_smallest_whole_modules():
    names = ["bert.embeddings.a", "bert.embeddings.b", "bert.encoder.layer.0.x", "bert.encoder.layer.0.y",
             "bert.encoder.layer.1.x", "classifier.weight"]
    assert module_prefixes(names[:2], names) == ["bert.embeddings"]
    assert module_prefixes(names[:4], names) == ["bert.embeddings", "bert.encoder.layer.0"]
    assert module_prefixes(["bert.encoder.layer.0.x"], names) == ["bert.encoder.layer.0.x"]


@pytest.mark.parametrize("loop", LOOPS)
def test_our_loops_do_what_the_recipe_says(battery_for, loop):
    """Every row of our loops' effective recipe is 'as recipe', with the figures the base recipe implies."""
    from mrpc_check.checks.effective import effective_recipe

    eff = effective_recipe(battery_for(loop))
    rows = {r.name: r for r in eff.rows}
    assert not eff.error and [r.name for r in eff.rows if r.mark != "="] == [], "\n".join(
        f"{r.mark} {r.name}: {r.observed} [{r.recipe}]" for r in eff.rows)
    assert rows["peak lr"].observed == "0.001"
    assert rows["schedule"].observed.startswith("linear, warmup 2, 6 steps to 0")
    assert rows["accumulation"].observed == "2 micro-batch(es) per step"  # 6 micro-batches an epoch: 3 full groups
    assert eff.clip.norm is None and eff.frozen == [] and eff.dropout == 0.0
    assert eff.loss.form is not None and eff.loss.form.plain
    # Weighted by size over the step: each row weighs exactly as much as in the mean over its step's rows.
    assert eff.loss.scale == pytest.approx((1.0, 1.0), rel=1e-3)
    assert all(v <= MOVED for v in eff.moved.values()) and "end" in eff.moved


def test_an_unknown_or_unreadable_extra_is_one_line():
    from mrpc_check.checks.contract import AdapterError, capabilities

    def loop(*args):
        return []

    loop.extras = {"label_smothing": 0.1}
    with pytest.raises(AdapterError, match="did you mean 'label_smoothing'"):
        capabilities(loop, "loop")
    loop.extras = {"max_grad_norm": "high"}
    with pytest.raises(AdapterError, match=r"extras\['max_grad_norm'\] = 'high' cannot be read"):
        capabilities(loop, "loop")
    loop.extras = {"held_out": 1.0}  # a share of the training rows: below 1
    with pytest.raises(AdapterError, match=r"extras\['held_out'\] = 1.0 cannot be read \(out of range\)"):
        capabilities(loop, "loop")
    loop.extras = ["max_grad_norm"]
    with pytest.raises(AdapterError, match="give a dict"):
        capabilities(loop, "loop")
    loop.extras = {"frozen": "bert.embeddings", "class_weights": [1, 2]}
    caps = capabilities(loop, "loop")
    assert caps.extra("frozen") == ("bert.embeddings",) and caps.extra("class_weights") == (1.0, 2.0)
    assert caps.to_dict()["extras"] == {"class_weights": (1.0, 2.0), "frozen": ("bert.embeddings",)}


@pytest.fixture
def declaring(battery_for):
    """``declaring(twin, extras)``: the twin's shared battery judged as if its adapter declared ``extras``.

    What a loop declares changes the verdicts, never the runs (the recipe a run gets depends on
    ``supports`` alone), so one battery per twin serves every declaration; its own verdicts come back after.
    """
    from mrpc_check.checks import broken
    from mrpc_check.checks.contract import capabilities

    touched = []

    def judge_as(twin, extras):
        battery = battery_for(f"mrpc_check.checks.broken:{twin}")
        touched.append((battery, battery.caps, battery.verdicts))
        declared = type(twin, (getattr(broken, twin),), {"extras": extras})()
        battery.caps, battery.verdicts = capabilities(declared, twin), {}
        return battery

    yield judge_as
    for battery, caps, verdicts in reversed(touched):
        battery.caps, battery.verdicts = caps, verdicts


@pytest.mark.parametrize("loop,check,extras,status", [
    ("ClipsWhenRecipeHasNone", "clipping", {"max_grad_norm": 0.5}, "pass"),
    ("ClipsWhenRecipeHasNone", "clipping", {"max_grad_norm": 0.7}, "fail"),
    ("SmoothsLabels", "loss", {"label_smoothing": 0.1}, "pass"),
    ("SmoothsLabels", "loss", {"label_smoothing": 0.2}, "fail"),
    ("FreezesEmbeddings", "frozen", {"frozen": ["bert.embeddings"]}, "pass"),
    ("FreezesEmbeddings", "frozen", {"frozen": ["bert.encoder.layer.0"]}, "fail"),
    ("WarmsUpWithoutRecipe", "schedule", {"warmup_steps": 2}, "pass"),
    ("WarmsUpWithoutRecipe", "schedule", {"warmup_steps": 3}, "fail"),
])
def test_a_declared_extra_passes_when_the_run_shows_it_and_fails_when_it_does_not(declaring, loop, check, extras, status):
    from mrpc_check.checks.verdict import judge

    verdict = judge(declaring(loop, extras), check)
    assert verdict.status == status, verdict.message()
    if status == "pass":
        assert verdict.extra and "declared" in verdict.figure
    else:
        assert "declared" in verdict.bug and verdict.fix


@pytest.mark.parametrize("loop", ["ClipsWhenRecipeHasNone"])
def test_a_fixed_clip_is_not_blamed_on_accumulation(battery_for, loop):
    """The clip is the clipping check's: the accumulation check judges the gradient backward produced and passes."""
    from mrpc_check.checks.verdict import REGISTRY

    battery = battery_for(f"mrpc_check.checks.broken:{loop}")
    accumulation = REGISTRY["accumulation"].run(battery)
    assert accumulation.status == "pass", accumulation.message()
    assert "before its clip" in accumulation.figure
    assert REGISTRY["gradients_cleared"].run(battery).status == "pass"


def test_the_table_and_json_carry_the_effective_recipe(bert, capsys, tmp_path):
    import json

    from mrpc_check.cli import main

    out = tmp_path / "v.json"
    assert main(["verify", "--loop", "mrpc_check.checks.broken:ClipsWhenRecipeHasNone", "--checks", "clipping",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(table) if line.startswith("effective recipe"))
    assert table[-1] == "0 passed, 0 failed, 1 warned, 0 skipped"  # the closing line stays last
    clip = next(line for line in table[start:] if " clipping " in line)
    assert clip.lstrip().startswith("+") and "clips at global norm 0.5" in clip and "[recipe: none]" in clip
    data = json.loads(out.read_text())
    rows = {r["name"]: r for r in data["effective_recipe"]["rows"]}
    assert rows["clipping"]["relation"] == "extra" and rows["loss"]["relation"] == "as recipe"
    assert data["verdicts"][0]["extra"] is True


def test_a_loop_that_crashes_gets_a_line_for_its_recipe_too(bert):
    from mrpc_check.checks.battery import format_table, run_battery
    from mrpc_check.checks.broken import PlainLoop

    class Crashes(PlainLoop):
        def optimizer_step(self, model, optimizer, scheduler, scaler, recipe):
            raise RuntimeError("CUDA out of memory\nmore detail")

    verdicts = run_battery(Crashes(), bert, checks=["loss", "frozen", "clipping"])
    assert all(v.status == "fail" and "raised RuntimeError: CUDA out of memory" in v.figure for v in verdicts)
    text = format_table("crashes", verdicts)
    assert "effective recipe: the base run raised RuntimeError: nothing inferred" in text
    assert "Traceback" not in text and "more detail" not in text


@pytest.mark.parametrize("loop", ["AveragesWeightsIntoModel"])
def test_weights_moved_outside_the_optimizer_are_measured(battery_for, loop):
    moved = battery_for(f"mrpc_check.checks.broken:{loop}").base_run().observation.moved
    # The average is written in after every step but the first (its copy starts there): steps 2-3 and 5-6 are read.
    assert moved[1] == 0.0 and moved[2] > 1e-5 and moved[5] > 1e-5 and moved["end"] > 1e-5
    assert not math.isnan(moved["end"])


def test_clip_finding_describes_each_case():
    assert "every gradient multiplied by 0.5" in ClipFinding(scale=0.5, steps=3).describe()
    assert "altered after backward at 2 of 3" in ClipFinding(altered=2, steps=3).describe()


def _loop_that_also_scores_its_training_rows(model, train_dataset, eval_dataset, collator, recipe):
    """A plain loop that, after each epoch, predicts its training rows (training accuracy) before the validation rows."""
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    torch.manual_seed(recipe.seed)
    loader = DataLoader(train_dataset, batch_size=recipe.batch_size, shuffle=True, collate_fn=collator,
                        generator=torch.Generator().manual_seed(recipe.seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=len(loader) * recipe.epochs)
    predictions = []
    for _ in range(recipe.epochs):
        model.train()
        for batch in loader:
            model(**batch).loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            for batch in DataLoader(train_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator):
                model(**batch)  # training accuracy, for the log
            predictions = [p for batch in DataLoader(eval_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator)
                           for p in model(**batch).logits.argmax(-1).tolist()]
    return predictions


_loop_that_also_scores_its_training_rows.supports = set()


def test_an_extra_pass_over_the_training_rows_is_an_extra_not_an_evaluation_on_the_wrong_split(bert):
    from mrpc_check.checks.battery import run_battery

    verdicts = run_battery(_loop_that_also_scores_its_training_rows, bert, checks=["evaluation"])
    evaluation = next(v for v in verdicts if v.check == "evaluation")
    assert evaluation.status == "pass", evaluation.message()
    row = next(r for r in verdicts.effective.rows if r.name == "evaluation")
    assert row.mark == "+" and "train+validation in eval mode" in row.observed


def test_when_two_schedules_fit_the_scheduler_step_count_picks_and_an_ignored_warmup_is_named(bert):
    """No warmup over 12 steps stepped once per step, and warmup 2 over 26 stepped twice per step, give the same 12
    rates; the loop's scheduler was counted once per optimizer step, so the first reading is the loop's."""
    from mrpc_check.checks.broken import PlainLoop
    from mrpc_check.checks.effective import effective_recipe
    from mrpc_check.checks.harness import Battery
    from mrpc_check.checks.facts.schedule import infer_schedule

    rates = [1e-3 * (12 - k) / 12 for k in range(12)]
    assert infer_schedule(rates, 0.0, 1e-3, strides=(1, 2), expect=(2, 6)) == (2, 26, 2, 2)  # the rates alone: ambiguous
    assert infer_schedule(rates, 0.0, 1e-3, strides=(1,), expect=(2, 6)) == (0, 12, 1, 0)

    class NoWarmupNoAccumulation(PlainLoop):
        def __call__(self, model, train_dataset, eval_dataset, collator, recipe):
            return super().__call__(model, train_dataset, eval_dataset, collator, recipe.replace(grad_accum=1))

        def make_scheduler(self, optimizer, recipe, total, warmup_shift=0):
            return super().make_scheduler(optimizer, recipe.replace(warmup_steps=0, warmup_ratio=0.0), total, warmup_shift)

    battery = Battery(NoWarmupNoAccumulation(), bert)
    try:
        assert battery.base_run().recipe.warmup_steps == 2
        row = next(r for r in effective_recipe(battery).rows if r.name == "schedule")
    finally:
        battery.close()
    assert row.mark == "!" and row.observed.startswith("linear, warmup 0, 12 steps to 0; the recipe's warmup of 2 steps is ignored"), row
