"""Loops as people fine-tune today: tensors the loop adds (PEFT LoRA), optimizers that schedule themselves
(schedule-free), a warmup given as a fraction of a step, a head outside the model.

Each correct loop is judged right on what it does, and each planted bug is still caught on it: the battery
watches the tensors the loop trains, not only the model's own. peft and schedulefree are pinned test extras;
their tests skip naming the install where they are absent.
"""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from mrpc_check.checks.battery import run_battery


def _needs(name):
    return pytest.importorskip(name, reason=f"{name} is a test extra: pip install -e '.[test]'")


def _evaluate(model, eval_dataset, collator, batch_size):
    model.eval()
    predictions = []
    with torch.no_grad():
        for batch in DataLoader(eval_dataset, batch_size=batch_size, collate_fn=collator):
            predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def lora_loop(*, head=True, optimizer_first=False, zero_grad=True, lora_dropout=0.0):
    """A LoRA loop as PEFT's sequence-classification example writes it, with one planted bug at a time.

    ``optimizer_first``: the optimizer built from the model before get_peft_model (it holds the base, now frozen,
    and none of the LoRA tensors). ``head=False``: LoRA without task_type, so no copy of the classifier trains.
    ``zero_grad=False``: gradients never cleared.
    """

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        from peft import LoraConfig, get_peft_model
        from transformers import get_linear_schedule_with_warmup

        torch.manual_seed(recipe.seed)
        if optimizer_first:
            optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        config = (LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=lora_dropout) if head else
                  LoraConfig(r=8, lora_alpha=16, lora_dropout=lora_dropout, target_modules=["query", "value"]))
        model = get_peft_model(model, config)
        if not optimizer_first:
            optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        total = len(loader) * recipe.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, recipe.warmup_steps or math.ceil(recipe.warmup_ratio * total), total)
        for _ in range(recipe.epochs):
            model.train()
            for batch in loader:
                model(**batch).loss.backward()
                optimizer.step()
                scheduler.step()
                if zero_grad:
                    optimizer.zero_grad()
        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)

    adapter.supports = {"warmup", "weight_decay"}
    return adapter


CHECKS = ["optimizer", "frozen", "gradients_cleared"]


class TestLora:
    def test_the_tensors_it_adds_are_seen_training_and_judged(self, bert):
        """One battery: the verdicts, the effective recipe, and lora_B observed moving from 0 (PEFT's init)."""
        _needs("peft")
        from mrpc_check.checks.effective import effective_recipe
        from mrpc_check.checks.harness import Battery
        from mrpc_check.checks.verdict import judge

        with Battery(lora_loop(), bert) as battery:
            got = {name: judge(battery, name) for name in CHECKS}
            effective = effective_recipe(battery)
            run = battery.base_run()
        # Judged on the tensors that train: AdamW(model.parameters()) decays the head copy's bias at the variant decay.
        assert got["optimizer"].status == "warn", got["optimizer"].message()
        assert "1 of 1 bias/LayerNorm" in got["optimizer"].figure and "modules_to_save.default.bias" in got["optimizer"].figure
        # The gradient oracle recomputes on a copy of the LoRA model: exact, so it can pass (and fail, below).
        assert got["gradients_cleared"].status == "pass", got["gradients_cleared"].message()
        assert got["frozen"].status == "warn" and "trains 10 tensors of its own" in got["frozen"].bug, got["frozen"].message()
        assert len(effective.added) == 10 and any("lora_B" in n for n in effective.added), effective.added
        row = next(r for r in effective.rows if r.name == "trained tensors")
        assert row.observed.startswith("10 tensors the loop added (LoRA A/B on query, value; a copy of classifier)"), row.observed
        assert "trainable but never updated" not in row.observed
        # Observed, not inferred: lora_B starts at 0 and the steps the battery saw moved it.
        names = [n for n in run.observation.added if "lora_B" in n]
        assert names and all(n in run.observation.steps[0].updated for n in names)
        assert all(float(run.observation.tensors[n].detach().abs().max()) > 0 for n in names)
        assert all(float(run.observation.steps[0].weights[n].abs().max()) == 0 for n in names)

    def test_an_optimizer_built_before_get_peft_model_fails_optimizer(self, bert):
        _needs("peft")
        got = {v.check: v for v in run_battery(lora_loop(optimizer_first=True), bert, checks=["optimizer"])}
        verdict = got["optimizer"]
        assert verdict.status == "fail" and "lora_A" in verdict.figure and "get_peft_model" in verdict.fix, verdict.message()

    def test_no_trained_head_fails_frozen_by_name(self, bert):
        _needs("peft")
        got = {v.check: v for v in run_battery(lora_loop(head=False), bert, checks=["frozen"])}
        verdict = got["frozen"]
        assert verdict.status == "fail" and "classification head" in verdict.bug and "classifier.weight" in verdict.figure, verdict.message()

    def test_gradients_never_cleared_still_fail_under_lora(self, bert):
        _needs("peft")
        got = {v.check: v for v in run_battery(lora_loop(zero_grad=False), bert, checks=["gradients_cleared"])}
        assert got["gradients_cleared"].status == "fail" and not got["gradients_cleared"].caused_by, got["gradients_cleared"].message()

    def test_lora_dropout_steps_the_gradient_checks_aside(self, bert):
        _needs("peft")
        got = {v.check: v for v in run_battery(lora_loop(lora_dropout=0.1), bert, checks=["gradients_cleared", "dropout"])}
        assert got["dropout"].status == "warn"
        assert got["gradients_cleared"].status == "skip" and got["gradients_cleared"].caused_by == "dropout"


def schedule_free_loop(*, warmup_from_recipe=True):
    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        import schedulefree

        torch.manual_seed(recipe.seed)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        total = len(loader) * recipe.epochs
        warmup = (recipe.warmup_steps or math.ceil(recipe.warmup_ratio * total)) if warmup_from_recipe else 0
        optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=recipe.lr, warmup_steps=warmup)
        for _ in range(recipe.epochs):
            model.train()
            optimizer.train()
            for batch in loader:
                model(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        optimizer.eval()
        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)

    adapter.supports = {"warmup"}
    return adapter


class TestScheduleFree:
    def test_the_rate_each_step_applied_is_the_optimizers_own(self, bert):
        """Closed form of AdamWScheduleFree's warmup: step k (0-based) applies lr x min(1, (k + 1) / warmup_steps)."""
        _needs("schedulefree")
        from mrpc_check.checks.harness import Battery

        with Battery(schedule_free_loop(), bert) as battery:
            run = battery.base_run()
            lr, warmup = run.recipe.lr, run.recipe.warmup_steps
            assert [s.lrs[0] for s in run.observation.steps] == pytest.approx(
                [lr * min(1.0, (k + 1) / warmup) for k in range(len(run.observation.steps))], rel=1e-9)
            assert run.observation.own_schedule and run.observation.scheduler_calls == 0

    def test_no_scheduler_is_named_with_its_fix(self, bert):
        _needs("schedulefree")
        verdicts = run_battery(schedule_free_loop(), bert, checks=["schedule"])
        verdict = {v.check: v for v in verdicts}["schedule"]
        assert verdict.status == "fail" and verdict.bug.startswith("no lr scheduler"), verdict.message()
        assert "stays at the peak" in verdict.bug and "'schedule': 'constant'" in verdict.fix
        assert "per micro-batch" not in verdict.bug and "sized" not in verdict.bug
        row = next(r for r in verdicts.effective.rows if r.name == "schedule")
        assert row.observed.startswith("constant at the peak after a warmup of 2"), row.observed

    def test_declared_constant_passes_and_an_ignored_warmup_still_fails(self, bert):
        _needs("schedulefree")
        adapter = schedule_free_loop()
        adapter.extras = {"schedule": "constant"}
        verdict = {v.check: v for v in run_battery(adapter, bert, checks=["schedule"])}["schedule"]
        assert verdict.status == "pass" and verdict.extra, verdict.message()
        broken = schedule_free_loop(warmup_from_recipe=False)
        broken.extras = {"schedule": "constant"}
        verdict = {v.check: v for v in run_battery(broken, bert, checks=["schedule"])}["schedule"]
        assert verdict.status == "fail" and "warmup" in verdict.bug, verdict.message()

    def test_the_weight_swap_of_optimizer_eval_stays_a_warning(self, bert):
        _needs("schedulefree")
        verdict = {v.check: v for v in run_battery(schedule_free_loop(), bert, checks=["outside_updates"])}["outside_updates"]
        assert verdict.status == "warn" and "optimizer.eval()" in verdict.bug, verdict.message()


def fractional_warmup_loop(model, train_dataset, eval_dataset, collator, recipe):
    """PEFT's example's warmup: num_warmup_steps = 0.06 x total, a float, never rounded."""
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(recipe.seed)
    loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    total = len(loader) * recipe.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0.06 * total, num_training_steps=total)
    _train_epochs(model, loader, optimizer, scheduler, recipe.epochs)
    return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)


def _train_epochs(model, loader, optimizer, scheduler, epochs):
    """The walkthrough's inner loop: one optimizer and scheduler step per batch."""
    model.train()
    for _ in range(epochs):
        for batch in loader:
            model(**batch).loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()


fractional_warmup_loop.supports = set()


def test_a_fractional_warmup_is_named_as_such(bert):
    verdicts = run_battery(fractional_warmup_loop, bert, checks=["schedule"])
    verdict = {v.check: v for v in verdicts}["schedule"]
    assert verdict.status == "fail" and "0.72 optimizer steps" in verdict.bug and "fraction" in verdict.bug, verdict.message()
    assert "math.ceil" in verdict.fix and "sized" not in verdict.bug
    assert verdicts.effective.schedule[:2] == (0.72, 12)


class OutsideHead(torch.nn.Module):
    """The model's encoder under a head of the loop's own, outside the model handed over."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.head = torch.nn.Linear(model.config.hidden_size, 2)

    def forward(self, labels, **inputs):
        hidden = self.model.bert(**inputs).pooler_output  # (batch, hidden)
        logits = self.head(hidden)
        self.model(**inputs)  # the model's own forward too, so the battery sees the rows (its logits unused)
        return torch.nn.functional.cross_entropy(logits, labels), logits


def outside_head_loop(*, copy_in_optimizer=False):
    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        import copy

        torch.manual_seed(recipe.seed)
        wrapper = OutsideHead(model)
        trained = copy.deepcopy(wrapper) if copy_in_optimizer else wrapper
        optimizer = torch.optim.AdamW(trained.parameters(), lr=recipe.lr, weight_decay=0.0)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1 - k / (len(loader) * recipe.epochs)))
        wrapper.train()
        for _ in range(recipe.epochs):
            for batch in loader:
                wrapper(**batch)[0].backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        wrapper.eval()
        predictions = []
        with torch.no_grad():
            for batch in DataLoader(eval_dataset, batch_size=recipe.eval_batch_size, collate_fn=collator):
                predictions += wrapper(**batch)[1].argmax(-1).tolist()
        return predictions

    adapter.supports = set()
    return adapter


def test_a_head_outside_the_model_is_named_and_the_gradient_checks_say_why_not(bert):
    verdicts = run_battery(outside_head_loop(), bert, checks=["optimizer", "gradients_cleared"])
    got = {v.check: v for v in verdicts}
    assert got["optimizer"].status != "fail", got["optimizer"].message()
    assert got["gradients_cleared"].status == "skip" and "outside the model" in got["gradients_cleared"].figure
    assert any(n.startswith("(outside the model)") for n in verdicts.effective.added), verdicts.effective.added


def test_an_optimizer_over_a_copy_still_fails(bert):
    """Tensors no gradient reaches are a copy's, not tensors the loop added: the optimizer check's bug as before."""
    got = {v.check: v for v in run_battery(outside_head_loop(copy_in_optimizer=True), bert, checks=["optimizer"])}
    assert got["optimizer"].status == "fail", got["optimizer"].message()


def plain_loop(*, loader_batch=lambda recipe: recipe.batch_size, patience=None):
    """The walkthrough's loop with accumulation; ``loader_batch`` sizes the training loader, ``patience`` adds an early
    stop on the training loss whose counter is never reset (a common tutorial slip)."""

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        from transformers import get_scheduler

        torch.manual_seed(recipe.seed)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=loader_batch(recipe), collate_fn=collator,
                            generator=torch.Generator().manual_seed(recipe.seed))
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps = math.ceil(len(loader) / recipe.grad_accum) * recipe.epochs
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=recipe.warmup_steps or math.ceil(recipe.warmup_ratio * steps),
                                  num_training_steps=steps)
        best, bad = float("inf"), 0
        model.train()
        for _ in range(recipe.epochs):
            batches = list(loader)
            for start in range(0, len(batches), recipe.grad_accum):
                group = batches[start : start + recipe.grad_accum]
                n = sum(len(b["labels"]) for b in group)
                for b in group:
                    loss = model(**b).loss
                    (loss * len(b["labels"]) / n).backward()
                if recipe.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                if patience is not None:
                    best, bad = min(best, loss.item()), bad + (loss.item() >= best)
                    if bad >= patience:
                        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)
        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)

    return adapter


def test_micro_batches_holding_the_whole_batch_are_one_root_in_grouping(bert):
    """Loaders built before the batch is cut for accumulation: 8 rows a micro-batch at batch 4, accumulation 2."""
    verdicts = run_battery(plain_loop(loader_batch=lambda r: r.batch_size * r.grad_accum), bert,
                           checks=["grouping", "gradients_cleared", "accumulation", "schedule"])
    got = {v.check: v for v in verdicts}
    assert got["grouping"].status == "fail" and "every micro-batch holds the whole batch (8 rows" in got["grouping"].bug
    assert got["gradients_cleared"].caused_by == "grouping" and got["accumulation"].caused_by == "grouping"
    assert root_causes_of(verdicts) == ["grouping"]


def test_the_recipe_batch_passes_grouping(bert):
    """The control: the same loop with the recipe's micro-batch is judged right."""
    got = {v.check: v for v in run_battery(plain_loop(), bert, checks=["grouping", "gradients_cleared"])}
    assert got["grouping"].status == "pass" and got["gradients_cleared"].status == "pass", got["grouping"].message()


def test_an_early_stop_inside_an_epoch_is_named_with_its_step_and_rows(bert):
    verdicts = run_battery(plain_loop(patience=1), bert, checks=["coverage", "schedule", "label_control"])
    got = {v.check: v for v in verdicts}
    coverage = got["coverage"]
    assert coverage.status == "fail" and coverage.bug.startswith("the loop stopped early: after optimizer step"), coverage.message()
    assert "left out" in coverage.bug and "patience counter reset" in coverage.fix
    assert got["schedule"].caused_by == "coverage"
    assert got["label_control"].status in ("pass", "skip") or got["label_control"].caused_by == "coverage", got["label_control"].message()
    assert "nothing is learned" not in got["label_control"].bug
    assert root_causes_of(verdicts) == ["coverage"]


def root_causes_of(verdicts):
    from mrpc_check.checks.battery import root_causes

    return root_causes(verdicts)


def kfold_loop(*, folds=3, loader_batch=None, sized_for_all_rows=False):
    """K-fold cross-validation as tutorials write it: a fresh model per fold (the initial weights loaded back), a new
    optimizer and schedule, training on the other folds' rows, an evaluation on the fold's held-out training rows,
    and the folds' averaged logits on eval_dataset returned. ``loader_batch``: a batch size that is not the recipe's;
    ``sized_for_all_rows``: each fold's schedule sized for the whole training set (a common k-fold slip)."""

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        import copy

        from torch.utils.data import Subset

        torch.manual_seed(recipe.seed)
        start = copy.deepcopy(model.state_dict())
        n = len(train_dataset)
        total = None
        for k in range(folds):
            model.load_state_dict(start)
            held = list(range(k, n, folds))
            rows = [i for i in range(n) if i not in set(held)]
            loader = DataLoader(Subset(train_dataset, rows), shuffle=True, batch_size=loader_batch or recipe.batch_size,
                                collate_fn=collator)
            optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
            steps = (math.ceil(n / recipe.batch_size) if sized_for_all_rows else len(loader)) * recipe.epochs
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s, steps=steps: max(0.0, 1 - s / steps))
            model.train()
            for _ in range(recipe.epochs):
                for batch in loader:
                    model(**batch).loss.backward()
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
            model.eval()
            with torch.no_grad():
                for batch in DataLoader(Subset(train_dataset, held), batch_size=recipe.eval_batch_size, collate_fn=collator):
                    model(**batch)  # the fold's score on its held-out training rows
                logits = torch.cat([model(**b).logits for b in DataLoader(eval_dataset, batch_size=recipe.eval_batch_size,
                                                                           collate_fn=collator)])
            total = logits if total is None else total + logits
        return (total / folds).argmax(-1).tolist()

    adapter.supports = {"weight_decay"}
    return adapter


KFOLD_CHECKS = ["grouping", "coverage", "schedule", "optimizer", "outside_updates", "evaluation", "label_control"]


def test_k_fold_is_named_as_k_models_and_judged_on_its_one_bug(bert):
    """Its batch size never reaches the loaders (14-15 rows a micro-batch): one root, grouping; the design a warning."""
    verdicts = run_battery(kfold_loop(loader_batch=32), bert, checks=KFOLD_CHECKS)
    got = {v.check: v for v in verdicts}
    assert root_causes_of(verdicts) == ["grouping"], [v.message() for v in verdicts if v.status == "fail"]
    assert "micro-batches of 15 rows" in got["grouping"].bug
    assert got["outside_updates"].status == "warn" and "3 models in one run" in got["outside_updates"].bug
    row = next(r for r in verdicts.effective.rows if r.name == "models")
    assert "optimizer steps 1, 3, 5" in row.observed and "k-fold cross-validation" in row.observed, row.observed


def test_a_correct_k_fold_warns_once_and_declared_passes(bert):
    adapter = kfold_loop()
    # (The label control, costly, is held on the k-fold loop with the bug above.)
    verdicts = run_battery(adapter, bert, checks=[c for c in KFOLD_CHECKS if c != "label_control"])
    assert [v.check for v in verdicts if v.status in ("fail", "warn") and v.check != "optimizer"] == ["outside_updates"], \
        [v.message() for v in verdicts if v.status in ("fail", "warn")]
    adapter.extras = {"models": 3}
    got = {v.check: v for v in run_battery(adapter, bert, checks=["outside_updates", "coverage"])}
    assert got["outside_updates"].status == "pass" and got["coverage"].status == "skip" and not got["coverage"].caused_by
    adapter.extras = {"models": 2}
    assert {v.check: v for v in run_battery(adapter, bert, checks=["outside_updates"])}["outside_updates"].status == "fail"


def test_a_k_fold_schedule_sized_for_every_row_fails_on_the_first_fold(bert):
    """Each fold is judged as one model: its schedule sized for all 22 rows never reaches 0 on the fold's 14-15."""
    verdicts = run_battery(kfold_loop(sized_for_all_rows=True), bert, checks=["schedule", "outside_updates"])
    got = {v.check: v for v in verdicts}
    assert got["schedule"].status == "fail" and not got["schedule"].caused_by, got["schedule"].message()
    assert "of 8 used lr" in got["schedule"].figure, got["schedule"].figure  # the first fold's 8 steps, not all 24
    assert next(r for r in verdicts.effective.rows if r.name == "schedule").mark == "!"
    control = {v.check: v for v in run_battery(kfold_loop(), bert, checks=["schedule"])}["schedule"]
    assert control.status == "pass" and "the first of 3 models" in control.figure, control.message()


def held_out_loop(*, share=0.2, evaluate_held=True):
    """Early stopping's set-up: ``share`` of the training rows held out as the loop's own validation split, scored in
    eval mode after every epoch (``evaluate_held=False``: the same rows dropped and never looked at again)."""

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        from torch.utils.data import Subset

        torch.manual_seed(recipe.seed)
        held = list(range(0, len(train_dataset), round(1 / share)))
        kept = [i for i in range(len(train_dataset)) if i not in set(held)]
        loader = DataLoader(Subset(train_dataset, kept), shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps = len(loader) * recipe.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
        for _ in range(recipe.epochs):
            _train_epochs(model, loader, optimizer, scheduler, 1)
            if evaluate_held:
                _evaluate(model, Subset(train_dataset, held), collator, recipe.eval_batch_size)
        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)

    adapter.supports = {"weight_decay"}
    return adapter


def test_a_held_out_validation_split_is_named_and_declarable(bert):
    """Rows never trained on but scored every epoch are the loop's validation split: a named choice, not rows dropped,
    and its passes are not 'evaluating on the train split'. The same rows dropped unseen stay coverage's bug."""
    adapter = held_out_loop()
    verdicts = run_battery(adapter, bert, checks=["coverage", "evaluation", "schedule"])
    got = {v.check: v for v in verdicts}
    assert got["coverage"].status == "warn" and "own validation split" in got["coverage"].bug, got["coverage"].message()
    assert "5 of 22 training rows" in got["coverage"].figure and "'held_out': 0.23" in got["coverage"].fix
    assert got["evaluation"].status == "pass" and got["schedule"].status == "pass", got["evaluation"].message()
    assert "held-out training rows" in next(r for r in verdicts.effective.rows if r.name == "evaluation").observed
    adapter.extras = {"held_out": 0.2}
    assert {v.check: v for v in run_battery(adapter, bert, checks=["coverage"])}["coverage"].status == "pass"
    adapter.extras = {"held_out": 0.5}
    assert {v.check: v for v in run_battery(adapter, bert, checks=["coverage"])}["coverage"].status == "fail"
    dropped = {v.check: v for v in run_battery(held_out_loop(evaluate_held=False), bert, checks=["coverage"])}["coverage"]
    assert dropped.status == "fail" and "dropped" in dropped.bug, dropped.message()


def test_a_hard_coded_epoch_count_is_named_as_such(bert):
    """Whole epochs, each over every row, but not recipe.epochs of them: named by coverage, not as rows repeated
    within an epoch (the schedule sized for its own 3 epochs is consistent)."""
    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        torch.manual_seed(recipe.seed)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / (len(loader) * 3)))
        _train_epochs(model, loader, optimizer, scheduler, 3)
        return _evaluate(model, eval_dataset, collator, recipe.eval_batch_size)

    adapter.supports = {"weight_decay"}
    verdicts = run_battery(adapter, bert, checks=["coverage", "schedule"])
    coverage = {v.check: v for v in verdicts}["coverage"]
    assert coverage.status == "fail" and "trains 3 epochs where the recipe asks for 2" in coverage.bug, coverage.message()
    assert root_causes_of(verdicts) == ["coverage"], [v.message() for v in verdicts]


def ensemble_loop(*, members=3, handed_first=True, reseed_head=False):
    """An ensemble of differently seeded models: each member trained alone (its own seed, shuffle and optimizer), the
    members' averaged probabilities returned. ``handed_first``: the first member is the model handed over (else every
    member is a deep copy and the handed model never trains); ``reseed_head``: each copy's head re-initialised under
    its seed (a model loaded anew under another seed)."""

    def train(model, train_dataset, collator, recipe, seed):
        torch.manual_seed(seed)
        loader = DataLoader(train_dataset, shuffle=True, batch_size=recipe.batch_size, collate_fn=collator)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps = len(loader) * recipe.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
        _train_epochs(model, loader, optimizer, scheduler, recipe.epochs)

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        import copy

        start = copy.deepcopy(model)
        models = ([model] if handed_first else []) + [copy.deepcopy(start) for _ in range(members - handed_first)]
        total = 0
        for k, member in enumerate(models):
            if reseed_head and member is not model:
                torch.manual_seed(recipe.seed + k)
                member.classifier.reset_parameters()
            train(member, train_dataset, collator, recipe, recipe.seed + k)
            member.eval()
            with torch.no_grad():
                logits = torch.cat([member(**b).logits for b in DataLoader(eval_dataset, batch_size=recipe.eval_batch_size,
                                                                           collate_fn=collator)])
            total = total + logits.softmax(-1)
        return total.argmax(-1).tolist()

    adapter.supports = {"weight_decay"}
    return adapter


ENSEMBLE_CHECKS = ["grouping", "coverage", "schedule", "optimizer", "outside_updates", "gradients_cleared", "evaluation"]


@pytest.mark.parametrize("reseed_head", [False, True])
def test_an_ensemble_of_other_model_objects_is_named_as_such_and_its_first_member_judged(bert, reseed_head):
    """Members the hooks never see (deep copies trained alone): their steps are not the model's, so the schedule and
    the step counts are judged on the model handed over, and the ensemble is named once, as a declarable choice."""
    adapter = ensemble_loop(reseed_head=reseed_head)
    verdicts = run_battery(adapter, bert, checks=ENSEMBLE_CHECKS)
    got = {v.check: v for v in verdicts}
    assert root_causes_of(verdicts) == [], [v.message() for v in verdicts if v.status == "fail"]
    assert got["schedule"].status == "pass" and got["gradients_cleared"].status == "pass", got["schedule"].message()
    several = got["outside_updates"]
    assert several.status == "warn" and "3 models in one run" in several.bug and "2 other model object(s)" in several.figure
    assert ("other start weights" in several.figure) == reseed_head, several.figure
    adapter.extras = {"models": 3}
    assert {v.check: v for v in run_battery(adapter, bert, checks=["outside_updates"])}["outside_updates"].status == "pass"


def test_an_ensemble_that_never_trains_the_handed_model_has_one_root(bert):
    verdicts = run_battery(ensemble_loop(members=2, handed_first=False), bert, checks=ENSEMBLE_CHECKS)
    got = {v.check: v for v in verdicts}
    assert root_causes_of(verdicts) == ["outside_updates"], [v.message() for v in verdicts if v.status == "fail"]
    assert "never the model it was handed" in got["outside_updates"].bug
    assert all(v.caused_by == "outside_updates" for v in verdicts if v.check != "outside_updates"), \
        [v.message() for v in verdicts]


@pytest.mark.integration
def test_a_resume_replaying_another_shuffle_is_its_own_root_beside_a_grouping_bug(bert):
    """Grouping off by one and a resume that redraws the shuffle: the resume failure is not grouping's consequence
    (its last epoch comes in another order, which no skip count does), so both are named."""
    from mrpc_check.checks.battery import run_battery
    from mrpc_check.checks.twins import AccumulatesOffByOne, ResumeReplaysAnotherShuffle

    class Both(AccumulatesOffByOne, ResumeReplaysAnotherShuffle):
        pass

    verdicts = {v.check: v for v in run_battery(Both(), bert, checks=["grouping", "resume"])}
    assert verdicts["grouping"].status == "fail" and verdicts["grouping"].caused_by is None
    resume = verdicts["resume"]
    assert resume.status == "fail" and resume.caused_by is None and "another shuffle" in resume.bug, resume.message()
