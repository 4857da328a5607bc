"""Small, deterministic stand-ins for tests: a tiny BERT and synthetic MRPC-shaped data.

Nothing here downloads: the tiny model is randomly initialised from a config,
and takes its vocabulary size from whatever tokenizer the caller has (the real
bert-base-uncased WordPiece vocabulary in this project's suite).
"""

from __future__ import annotations

import random

# torch and transformers are imported inside the functions that build models: the suite's conftest
# imports this module in pytest-xdist's controller too, which never builds one (torch is 1 s there,
# before any worker starts).

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
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_bert_config(vocab_size, **overrides))


def synthetic_mrpc(n_train: int = 64, n_validation: int = 24, seed: int = 0):
    """A ``DatasetDict`` with MRPC's schema: paraphrases are shuffles, non-paraphrases share nothing."""
    from datasets import Dataset, DatasetDict

    from mrpc_check.pipeline.data import features

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


# -- other architectures: tiny RoBERTa and DistilBERT with tokenizers trained here, offline ------

_SPECIALS = {
    # RoBERTa: byte-level BPE, pairs laid out as <s> a </s></s> b </s>, no token types.
    "roberta": {"cls_token": "<s>", "sep_token": "</s>", "bos_token": "<s>", "eos_token": "</s>",
                "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"},
    # DistilBERT: WordPiece, [CLS] a [SEP] b [SEP] like BERT, but the model takes no token types.
    "distilbert": {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                   "mask_token": "[MASK]"},
}


def training_text(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences drawn like :func:`synthetic_mrpc`'s, to train a tokenizer on (nothing downloaded)."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(_WORDS, rng.randint(3, 14))) for _ in range(n)] + [" ".join(_WORDS)]


def train_tokenizer(kind: str, texts=None):
    """A fast tokenizer of ``kind`` ("roberta" or "distilbert") trained with `tokenizers` on ``texts``.

    Its post-processor lays pairs out as the real model family does, and ``model_input_names``
    leaves out ``token_type_ids`` (neither model has segment embeddings to feed).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = texts or training_text()
    specials = _SPECIALS[kind]
    ordered = list(dict.fromkeys(specials.values()))
    if kind == "roberta":
        tok = Tokenizer(models.BPE(unk_token=specials["unk_token"]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=ordered, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        tok.post_processor = processors.RobertaProcessing(
            (specials["sep_token"], tok.token_to_id(specials["sep_token"])),  # sep
            (specials["cls_token"], tok.token_to_id(specials["cls_token"])),  # cls
        )
    elif kind == "distilbert":
        tok = Tokenizer(models.WordPiece(unk_token=specials["unk_token"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=ordered))
        cls, sep = specials["cls_token"], specials["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
        )
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}: roberta or distilbert")
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512,
                                   model_input_names=["input_ids", "attention_mask"], **specials)


def make_tiny(kind: str, tokenizer, seed: int = 0, **overrides):
    """A freshly initialised tiny classifier of ``kind`` (bert, roberta, distilbert) for ``tokenizer``."""
    import torch
    import transformers

    if kind == "bert":
        return make_tiny_model(len(tokenizer), seed=seed, **overrides)
    labels = dict(id2label={0: "not_equivalent", 1: "equivalent"}, label2id={"not_equivalent": 0, "equivalent": 1}, num_labels=2)
    if kind == "roberta":
        # Positions start after the padding index, so 512 tokens need 514 position embeddings.
        config = transformers.RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                            intermediate_size=64, max_position_embeddings=514, type_vocab_size=1,
                                            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                                            eos_token_id=tokenizer.sep_token_id, **labels)
        params = dict(hidden_dropout_prob=overrides.pop("hidden_dropout_prob", 0.1),
                      attention_probs_dropout_prob=overrides.pop("attention_probs_dropout_prob", 0.1))
        cls = transformers.RobertaForSequenceClassification
    elif kind == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                               max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id, **labels)
        drop = overrides.pop("hidden_dropout_prob", 0.1)
        params = dict(dropout=drop, attention_dropout=overrides.pop("attention_probs_dropout_prob", 0.1), seq_classif_dropout=drop)
        cls = transformers.DistilBertForSequenceClassification
    else:
        raise ValueError(f"unknown architecture {kind!r}: bert, roberta or distilbert")
    for key, value in {**params, **overrides}.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    return cls(config)
