"""Stage 2: sentence pairs -> input_ids / token_type_ids / attention_mask.

No padding here: padding is the collator's job, per batch (dynamic padding).
"""

from __future__ import annotations

import hashlib
from typing import Optional

# Columns the model never sees; "label" is renamed to "labels", the name HF models read the target from.
DROP_COLUMNS = ("sentence1", "sentence2", "idx")


def encode_pairs(tokenizer, sentence1, sentence2, max_length: Optional[int] = None):
    """Encode sentence pairs as ``[CLS] a [SEP] b [SEP]``, trimming the longer side first.

    Args:
        tokenizer: a Hugging Face tokenizer.
        sentence1: a string, or a list of strings.
        sentence2: the same for the second sentences (as many).
        max_length: truncation length; None uses the tokenizer's ``model_max_length``.

    Returns:
        The tokenizer's encoding (unpadded): lists of ids per example, or one list for a single pair.
    """
    if isinstance(sentence1, str):
        # A single call with text_pair="" drops the pair ([CLS] a [SEP], no second [SEP]) while
        # the batched call keeps it: encode singles as a batch of one so both agree.
        batch = tokenizer([sentence1], [sentence2], truncation="longest_first", max_length=max_length)
        return {key: value[0] for key, value in batch.items()}
    return tokenizer(sentence1, sentence2, truncation="longest_first", max_length=max_length)


def max_length_for(tokenizer, model_config=None, requested: Optional[int] = None) -> int:
    """The truncation length: the requested one, else the smaller of tokenizer and position limits."""
    if requested is not None:
        return requested
    limits = [tokenizer.model_max_length]
    if model_config is not None and getattr(model_config, "max_position_embeddings", None):
        limits.append(model_config.max_position_embeddings)
    # Tokenizers without a recorded limit report a huge sentinel (1e30): BERT's 512 is the sane cap.
    limit = min(limits)
    return limit if limit < 100_000 else 512


def tokenize_dataset(raw, tokenizer, max_length: Optional[int] = None):
    """Tokenize every split once, batched, and shape it for a PyTorch DataLoader.

    Args:
        raw: ``DatasetDict`` from :func:`mrpc_check.pipeline.data.load_mrpc`.
        tokenizer: the checkpoint's tokenizer.
        max_length: truncation length (see :func:`max_length_for`).

    Returns:
        ``DatasetDict`` with ``input_ids``, ``token_type_ids`` (BERT), ``attention_mask``
        and ``labels``, in torch format.
    """

    def _encode(batch):
        return encode_pairs(tokenizer, batch["sentence1"], batch["sentence2"], max_length)

    from datasets import DatasetDict

    state = _tokenizer_state(tokenizer)  # once for all splits: serialising a 30k vocabulary is most of the cost
    tokenized = DatasetDict({
        name: split.map(_encode, batched=True, desc="Tokenizing", new_fingerprint=_fingerprint(split, tokenizer, max_length, state))
        for name, split in raw.items()
    })
    columns = next(iter(tokenized.values())).column_names  # every split has the same columns
    present = [c for c in DROP_COLUMNS if c in columns]
    tokenized = tokenized.remove_columns(present)
    tokenized = tokenized.rename_column("label", "labels")
    tokenized.set_format("torch")
    return tokenized


# Bump when encode_pairs changes what it returns: the fingerprint names cached tokenizations.
_ENCODING_VERSION = "pairs-longest_first-1"


def _tokenizer_state(tokenizer) -> Optional[str]:
    """The fast tokenizer's full state (vocabulary, normaliser, pre-tokeniser, template) as canonical text, or None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (pure Python) tokenizer: no serialisation to hash
        return None
    # The serialisation also records the truncation and padding of the last call (transformers
    # sets them per call): left in, the same inputs would hash differently after another call.
    # They are cleared for the serialisation and put back, rather than parsed out of the JSON:
    # re-encoding a 30k vocabulary took 55 ms per call, a tenth of a tiny test run.
    truncation, padding = backend.truncation, backend.padding
    try:
        backend.no_truncation()
        backend.no_padding()
        return backend.to_str()
    finally:
        if truncation is not None:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)


def _fingerprint(split, tokenizer, max_length: Optional[int], state: Optional[str] = None) -> Optional[str]:
    """A fingerprint for the tokenized split from what decides its content, or None to let datasets hash.

    datasets otherwise hashes the map function by pickling it with the tokenizer inside: 1.5 s
    per call for BERT's WordPiece (most of a tiny test run), where hashing the tokenizer's own
    serialisation takes milliseconds. Data loaded from the Hub is cached on disk under this name,
    so everything that changes the output is in it: the split's fingerprint, the tokenizer's
    full state (``state``, from :func:`_tokenizer_state`; computed here when not given), its
    class, length limit, input names and truncation side, the truncation length and the
    encoding's version.
    """
    state = state if state is not None else _tokenizer_state(tokenizer)
    if state is None:  # datasets' default is safe for a slow tokenizer
        return None
    digest = hashlib.sha256()
    # Python-side settings that change the output: which columns come back, which end is cut.
    python_side = (type(tokenizer).__name__, tokenizer.model_max_length, list(tokenizer.model_input_names),
                   getattr(tokenizer, "truncation_side", "right"))
    for part in (split._fingerprint, state, python_side, max_length, _ENCODING_VERSION):
        digest.update(repr(part).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def token_lengths(dataset) -> list[int]:
    """Unpadded length of every encoded example, without materialising tensors."""
    return [len(ids) for ids in dataset.with_format(None)["input_ids"]]
