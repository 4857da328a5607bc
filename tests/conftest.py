"""Shared, session-scoped objects for the suite: tokenized synthetic MRPC and loader builders."""

import pytest


@pytest.fixture(scope="session")
def tiny_tokenized(mrpc_tokenizer):
    """Synthetic MRPC-shaped pairs (48 train, 20 validation), tokenized with the real vocabulary."""
    from mrpc_check.testing import synthetic_mrpc
    from mrpc_check.tokenize import tokenize_dataset

    return tokenize_dataset(synthetic_mrpc(48, 20, seed=0), mrpc_tokenizer, max_length=40)


@pytest.fixture(scope="session")
def loaders(mrpc_tokenizer):
    """``make(dataset, batch_size, seed=0, eval_dataset=None)`` -> (train_loader, eval_loader)."""
    from mrpc_check.batching import make_collator, make_eval_loader, make_train_loader

    collator = make_collator(mrpc_tokenizer)

    def make(dataset, batch_size, seed=0, eval_dataset=None, eval_batch_size=8):
        train = make_train_loader(dataset, collator, batch_size, seed)
        evaluation = make_eval_loader(eval_dataset if eval_dataset is not None else dataset, collator, eval_batch_size)
        return train, evaluation

    return make
