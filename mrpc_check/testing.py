"""Small, deterministic stand-ins for tests: a tiny BERT and synthetic MRPC-shaped data.

Nothing here downloads: the tiny model is randomly initialised from a config,
and takes its vocabulary size from whatever tokenizer the caller has (the real
bert-base-uncased WordPiece vocabulary in this project's suite).
"""

from __future__ import annotations

import random

import torch

# Words that are single WordPiece tokens in the uncased BERT vocabulary.
_WORDS = (
    "the company said shares rose fell market price percent year week bank court judge police "
    "government president minister report official state city report people group sales profit "
    "quarter billion million new old first last high low early late big small good bad"
).split()


# The header line of GLUE's MRPC train.tsv / dev.tsv (and of the raw MSR files).
GLUE_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def tiny_bert_config(vocab_size: int, num_labels: int = 2, **overrides):
    """A 2-layer, 32-wide BERT config: seconds to train on a CPU, same code paths as bert-base."""
    from transformers import BertConfig

    params = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        num_labels=num_labels,
        id2label={0: "not_equivalent", 1: "equivalent"},
        label2id={"not_equivalent": 0, "equivalent": 1},
    )
    params.update(overrides)
    return BertConfig(**params)


def make_tiny_model(vocab_size: int, seed: int = 0, **overrides):
    """A freshly initialised tiny ``BertForSequenceClassification``, identical for identical seeds."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_bert_config(vocab_size, **overrides))


def synthetic_mrpc(n_train: int = 64, n_validation: int = 24, seed: int = 0):
    """A ``DatasetDict`` with MRPC's schema: paraphrases are shuffles, non-paraphrases share nothing."""
    from datasets import Dataset, DatasetDict

    from mrpc_check.data import features

    rng = random.Random(seed)

    def split(n: int) -> Dataset:
        rows = {"sentence1": [], "sentence2": [], "label": [], "idx": []}
        for i in range(n):
            words = rng.sample(_WORDS, rng.randint(3, 14))
            label = i % 3 != 0  # two thirds positive, like MRPC
            if label:
                other = words[:]
                rng.shuffle(other)
            else:
                other = [w for w in _WORDS if w not in words][: rng.randint(3, 14)]
            rows["sentence1"].append(" ".join(words))
            rows["sentence2"].append(" ".join(other))
            rows["label"].append(int(label))
            rows["idx"].append(i)
        return Dataset.from_dict(rows, features=features())

    return DatasetDict({"train": split(n_train), "validation": split(n_validation)})


def reset_accelerate() -> None:
    """Forget Accelerate's process-wide state, so the next Accelerator starts from its own arguments."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def poison_forward(model, at_call: int, make=lambda output: output * float("nan")):
    """Make the ``at_call``-th forward pass of the classifier head return ``make(output)`` (default NaN).

    Returns the hook handle (``.remove()`` it to stop); ``make`` may raise, to stand in for a kill.
    """
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        return make(output) if calls["n"] == at_call else output

    return model.classifier.register_forward_hook(hook)
