"""Loops written as a LightningModule and trained by Lightning's Trainer, through ``lightning_adapter``.

Lightning steps the optimizer through a closure (forward and backward inside ``optimizer.step``), runs a sanity
check and a validation loop that are not training, and takes accumulation and clipping as Trainer flags. The
module here is the gallery's re-creation of Lightning's GLUE tutorial (examples/published/) with its one bug
fixed; its twins each put back one bug a Lightning user writes.
"""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("lightning", reason="lightning is a pinned test extra: pip install -e '.[test]'")

from mrpc_check.checks.verdict import judge  # noqa: E402

GALLERY = Path(__file__).resolve().parents[2] / "examples" / "published" / "lightning_text_transformers.py"


def _tutorial():
    spec = importlib.util.spec_from_file_location("_lightning_tutorial", GALLERY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _adapter(module_class, supports=frozenset({"grad_accum", "max_grad_norm", "warmup", "weight_decay"}), **trainer_kwargs):
    import math

    from mrpc_check.checks import lightning_adapter

    def adapter(model, train_dataset, eval_dataset, collator, recipe):
        per_epoch = math.ceil(math.ceil(len(train_dataset) / recipe.batch_size) / recipe.grad_accum)
        warmup = recipe.warmup_steps or math.ceil(recipe.warmup_ratio * recipe.epochs * per_epoch)
        fit = lightning_adapter(lambda m, r: module_class(m, learning_rate=r.lr, warmup_steps=warmup, weight_decay=r.weight_decay),
                                **trainer_kwargs)
        return fit(model, train_dataset, eval_dataset, collator, recipe)

    adapter.supports = set(supports)
    adapter.__name__ = module_class.__name__
    return adapter


@pytest.fixture(scope="module")
def modules():
    tutorial = _tutorial()

    class Fixed(tutorial.GLUETransformer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model.train()  # from_pretrained's eval mode: Lightning 2.x no longer switches it

    class EpochScheduler(Fixed):
        """configure_optimizers without "interval": "step": Lightning steps the scheduler once per epoch."""

        def configure_optimizers(self):
            [optimizer], [config] = super().configure_optimizers()
            return [optimizer], [config["scheduler"]]

    class ManualNoZeroGrad(Fixed):
        """Manual optimization (automatic_optimization = False) that never clears the gradients."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            optimizer, scheduler = self.optimizers(), self.lr_schedulers()
            loss = self(**batch)[0]
            self.manual_backward(loss)
            optimizer.step()
            scheduler.step()
            return loss

    return {"tutorial": tutorial.GLUETransformer, "fixed": Fixed, "epoch_scheduler": EpochScheduler,
            "manual_no_zero_grad": ManualNoZeroGrad}


@pytest.fixture(scope="module")
def battery_of(bert, modules):
    from mrpc_check.checks.harness import Battery

    made = {}

    def get(name, **trainer_kwargs):
        key = (name, tuple(sorted(trainer_kwargs.items())))
        if key not in made:
            made[key] = Battery(_adapter(modules[name], **trainer_kwargs), bert)
        return made[key]

    yield get
    for battery in made.values():
        battery.close()


@pytest.mark.parametrize("check_name", ["modes", "grouping", "schedule", "clipping", "optimizer", "gradients_cleared",
                                        "evaluation", "seed"])
def test_a_correct_lightning_module_passes(battery_of, check_name):
    """The closure steps read right (gradients, grouping, clipping as Trainer flags), the sanity check is no
    evaluation pass, and validation after the last epoch plus trainer.predict are two passes, not duplicates."""
    verdict = judge(battery_of("fixed"), check_name)
    assert verdict.status == "pass", verdict.message()


def test_the_sanity_check_is_named_beside_the_evaluation_passes(battery_of):
    from mrpc_check.checks.facts.rows import eval_passes, sanity_rows

    run = battery_of("fixed").base_run()
    # num_sanity_val_steps=2 batches of the evaluation loader, then one validation per epoch and the prediction pass.
    assert sanity_rows(run) == 2 * run.recipe.eval_batch_size
    assert len(eval_passes(run)) == run.recipe.epochs + 1
    assert run.observation.closure_steps


def test_the_tutorial_as_published_trains_in_eval_mode(battery_of):
    verdict = judge(battery_of("tutorial"), "modes")
    assert verdict.status == "fail" and verdict.bug == "model never switched to train mode", verdict.message()
    assert "on_train_start" in verdict.fix


def test_a_scheduler_stepped_per_epoch_fails_schedule(battery_of):
    verdict = judge(battery_of("epoch_scheduler"), "schedule")
    assert verdict.status == "fail", verdict.message()


@pytest.mark.integration
def test_manual_optimization_without_zero_grad_fails_gradients_cleared(battery_of):
    verdict = judge(battery_of("manual_no_zero_grad"), "gradients_cleared")
    assert verdict.status == "fail", verdict.message()


@pytest.mark.parametrize("check_name", ["padding", "gradients_cleared"])
def test_a_correct_module_under_bf16_mixed_passes(battery_of, check_name):
    """precision="bf16-mixed": Lightning divides the short last group's loss by accumulate_grad_batches, and bf16
    rounds a gradient otherwise at another loss scale; the span of the step's own micro-batches still holds at the
    loop's weighting (no false "gradients cleared in the wrong place")."""
    battery = battery_of("fixed", precision="bf16-mixed")
    assert battery.base_run().observation.autocast == ("cpu", "bfloat16")
    verdict = judge(battery, check_name)
    assert verdict.status == "pass", verdict.message()
