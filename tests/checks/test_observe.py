"""The observer: what the hooks see, independently of any loop."""

import torch

from mrpc_check.checks.observe import Observer, RowIndex


def test_forward_hooks_see_inputs_mode_and_rows(bert, tiny_tokenized):
    model = bert.make_model(0)
    rows = RowIndex({"train": tiny_tokenized["train"]}, pad_token_id=0)
    from mrpc_check.pipeline.batching import make_collator

    batch = make_collator(bert.tokenizer)([tiny_tokenized["train"][i] for i in (3, 1)])
    with Observer(model, rows) as obs:
        model.train()
        model(**batch)
        model.eval()
        with torch.no_grad():
            model(batch["input_ids"], batch["attention_mask"])  # positional inputs are bound by name too
    first, second = obs.observation.forwards
    assert first.training and first.grad_enabled and first.keys == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert first.rows == [("train", 3), ("train", 1)] and first.mask_ok and first.loss is not None
    assert not second.training and not second.grad_enabled and second.keys == {"input_ids", "attention_mask"}


def test_mask_that_is_not_a_prefix_is_flagged(tiny_tokenized):
    rows = RowIndex({"train": tiny_tokenized["train"]}, pad_token_id=0)
    ids = torch.tensor([tiny_tokenized["train"].with_format(None)[0]["input_ids"] + [0]])
    mask = torch.ones_like(ids)
    found, ok = rows.identify(ids, mask)
    assert found == [None] and ok  # the pad token was marked real: not the dataset row
    mask[0, 1] = 0
    assert rows.identify(ids, mask)[1] is False


def test_optimizer_hook_counts_steps_once_through_accelerate(bert):
    from accelerate import Accelerator

    from mrpc_check.testing import reset_accelerate

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.5)
    with Observer(model, capture=(1,)) as obs:
        accelerator = Accelerator(cpu=True)
        wrapped, prepared = accelerator.prepare(model, optimizer)
        wrapped(torch.ones(1, 2)).sum().backward()
        prepared.step()
    reset_accelerate()
    (step,) = obs.observation.steps
    assert step.lrs == [0.5] and step.grad_norm > 0
    assert set(step.grads) == {"weight", "bias"} and torch.equal(step.grads["bias"], torch.ones(2))
    assert obs.observation.final_lrs == [0.5] and obs.observation.optimizers == 1


def test_scheduler_steps_are_counted_per_open_observer_and_not_after():
    """LRScheduler.step calls between optimizer steps: 2 here (a prepared scheduler on 2 processes steps so);
    nested observers each count while open, and a closed one stops (no wrapper left counting into it)."""
    import torch

    from mrpc_check.checks.observe import Observer

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with Observer(model) as outer:
        with Observer(model) as inner:
            for _ in range(3):
                model(torch.ones(1, 2)).sum().backward()
                optimizer.step()
                scheduler.step()
                scheduler.step()
                optimizer.zero_grad()
        scheduler.step()
    scheduler.step()
    assert (outer.observation.scheduler_calls, inner.observation.scheduler_calls) == (7, 6)
    assert outer.observation.scheduler_stride() == inner.observation.scheduler_stride() == 2
    assert [s.scheduler_calls for s in inner.observation.steps] == [0, 2, 4]


def test_step_figures_read_a_sparse_gradient_as_a_dense_one():
    """nn.Embedding(sparse=True) with SGD: the applied norm, the raw norm and their dot product, by hand."""
    import pytest

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 3, sparse=True)
            self.head = torch.nn.Linear(3, 2)

        def forward(self, input_ids):
            return self.head(self.embed(input_ids).mean(1))

    torch.manual_seed(0)
    model = Toy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(model, None) as observer:
        model(torch.tensor([[1, 2, 3]])).sum().backward()
        assert model.embed.weight.grad.is_sparse
        expected = sum(float(p.grad.to_dense().pow(2).sum()) for p in model.parameters()) ** 0.5
        optimizer.step()
    step = observer.observation.steps[0]
    assert step.grad_norm == pytest.approx(expected, rel=1e-6) and step.raw_norm == pytest.approx(expected, rel=1e-6)
    assert step.raw_dot == pytest.approx(expected ** 2, rel=1e-6)


def test_members_are_other_model_objects_and_each_one_is_counted_once():
    """An optimizer over a deep copy that backward reaches is an ensemble member: its steps and its scheduler's are
    not the model's. A member freed before the next is built is forgotten, so the next one (which may reuse its
    id()) is counted as a member of its own."""
    import copy
    import gc

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 2))
    start = copy.deepcopy(model)
    with Observer(model) as obs:
        own = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.ones(1, 2)).sum().backward()
        own.step()
        for _ in range(3):
            member = copy.deepcopy(start)
            optimizer = torch.optim.SGD(member.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
            for _ in range(2):
                member(torch.ones(1, 2)).sum().backward()
                optimizer.step()
                scheduler.step()
            key = id(optimizer)
            del member, optimizer, scheduler
            gc.collect()
            assert key not in obs.observation.member_optimizers
        unused = torch.optim.SGD(copy.deepcopy(start).parameters(), lr=0.1)  # over a copy nothing trains: not a member
        unused.step()
    # The model's step and the unused copy's (the optimizer check's bug); no member's scheduler step, construction's included.
    assert len(obs.observation.steps) == 2 and obs.observation.scheduler_calls == 0
    assert [(m["steps"], m["fresh"]) for m in obs.observation.members] == [(2, True)] * 3
