"""The seed reaches every random draw of a run, on every loop: the new head's initialisation and the dropout masks.

A run whose data order follows ``--seed`` but whose head or dropout draws from a fixed seed
passes every test that compares losses or orders across seeds, and makes a seed sweep vary the
data order alone. Observed here from outside the pipeline: the head's weights as
``load_model`` hands the model over, and the positions each dropout module zeroes in the first
training forward (every batch padded to 64 tokens, so the masks of two runs have one shape
whatever rows they hold).
"""

import pytest
import torch


class _Seen(Exception):
    """Stops the run once the first training forward has been observed."""


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory, tiny_model_factory, mrpc_tokenizer):
    """A tiny encoder without a classification head, as a pretrained checkpoint ships (dropout 0.1 on)."""
    folder = tmp_path_factory.mktemp("pretrained-encoder")
    tiny_model_factory(seed=0).bert.save_pretrained(folder)
    mrpc_tokenizer.save_pretrained(folder)
    return str(folder)


def first_draws(monkeypatch, tmp_path, model_dir, data_dir, loop, seed):
    """(head weights as loaded, dropout masks of the first training forward) of `loop` at `seed`."""
    import mrpc_check.pipeline.run as pipeline
    from mrpc_check.pipeline.config import make_config
    from mrpc_check.testing import reset_accelerate

    seen = {}
    real_load = getattr(pipeline.load_model, "__wrapped__", pipeline.load_model)  # not an earlier call's watcher

    def load_and_watch(*args, **kwargs):
        model = real_load(*args, **kwargs)
        seen["head"] = torch.cat([p.detach().flatten().clone() for n, p in model.named_parameters() if n.startswith("classifier.")])
        masks = []

        def record(module, inputs, output):
            if module.training and torch.is_grad_enabled():
                masks.append((output == 0) & (inputs[0] != 0))  # zeroed by the mask, not by the input

        def stop(module, inputs, output):
            if module.training and torch.is_grad_enabled():
                seen["masks"] = torch.cat([m.flatten() for m in masks])
                raise _Seen

        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.register_forward_hook(record)
        model.register_forward_hook(stop)
        return model

    load_and_watch.__wrapped__ = real_load
    monkeypatch.setattr(pipeline, "load_model", load_and_watch)
    reset_accelerate()
    cfg = make_config(model=model_dir, data=data_dir, loop=loop, seed=seed, epochs=1, batch_size=4, device="cpu",
                      pad_to_multiple_of=64, output_dir=str(tmp_path / f"{loop}-{seed}-{len(list(tmp_path.iterdir()))}"))
    with pytest.raises(_Seen):
        pipeline.run_training(cfg)
    reset_accelerate()
    return seen["head"], seen["masks"]


@pytest.mark.parametrize("loop", ["manual", "accelerate", "trainer"])
def test_the_seed_decides_the_head_and_the_dropout_masks(monkeypatch, tmp_path, pretrained_dir, glue_dir, loop):
    head_a, masks_a = first_draws(monkeypatch, tmp_path, pretrained_dir, glue_dir, loop, seed=1)
    head_again, masks_again = first_draws(monkeypatch, tmp_path, pretrained_dir, glue_dir, loop, seed=1)
    head_b, masks_b = first_draws(monkeypatch, tmp_path, pretrained_dir, glue_dir, loop, seed=2)
    assert masks_a.shape == masks_b.shape and 0.02 < masks_a.float().mean() < 0.3  # dropout 0.1 really drew masks
    # The same seed reproduces both draws exactly...
    assert torch.equal(head_a, head_again), "same seed, other head initialisation"
    assert torch.equal(masks_a, masks_again), "same seed, other dropout masks"
    # ...and another seed changes both, not only the data order.
    assert not torch.equal(head_a, head_b), "--seed does not reach the head's initialisation (drawn from a fixed seed)"
    assert not torch.equal(masks_a, masks_b), "--seed does not reach the dropout masks (drawn from a fixed seed)"
