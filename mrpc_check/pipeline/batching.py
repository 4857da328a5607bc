"""Stage 3: collator, batch samplers and data loaders.

Training batches come from :class:`EpochBatchSampler`, whose order is a pure
function of ``(seed, epoch)``: two loops, two processes, or a resumed run see
the same batches, and Accelerate's sharding splits them without reshuffling.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding

# Length grouping sorts within windows of this many batches: long enough to cut padding
# to ~1%, short enough that each batch still mixes examples from across the epoch.
GROUP_WINDOW_BATCHES = 50


class EpochBatchSampler(Sampler):
    """Shuffled batches of indices, reproducible per (seed, epoch).

    With ``lengths`` given (``group_by_length``), each window of
    ``GROUP_WINDOW_BATCHES`` batches of a random permutation is sorted by length
    and cut into batches, then the batch order is shuffled: batches carry little
    padding and the epoch stays random. The one partial batch (when the split is
    not a multiple of ``batch_size``) always comes last, so every other batch is full.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        lengths: Optional[Sequence[int]] = None,
    ) -> None:
        if lengths is not None and len(lengths) != num_examples:
            raise ValueError(f"lengths has {len(lengths)} entries for {num_examples} examples")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.lengths = lengths
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def batches(self) -> list[list[int]]:
        """This epoch's batches, as lists of dataset indices."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.shuffle:
            order = torch.randperm(self.num_examples, generator=generator).tolist()
        else:
            order = list(range(self.num_examples))
        bs = self.batch_size
        if self.lengths is None:
            return [order[i : i + bs] for i in range(0, len(order), bs)]
        window = bs * GROUP_WINDOW_BATCHES
        full_count = (self.num_examples // bs) * bs
        body, tail = order[:full_count], order[full_count:]
        batches = []
        for start in range(0, len(body), window):
            chunk = sorted(body[start : start + window], key=lambda i: self.lengths[i], reverse=True)
            batches.extend(chunk[i : i + bs] for i in range(0, len(chunk), bs))
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[i] for i in perm]
        if tail:
            batches.append(tail)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())


def make_collator(tokenizer, pad_to_multiple_of: Optional[int] = None) -> DataCollatorWithPadding:
    """Dynamic padding: each batch padded to its longest sequence (or the next multiple)."""
    return DataCollatorWithPadding(tokenizer=tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")


def make_train_loader(
    dataset,
    collator,
    batch_size: int,
    seed: int,
    lengths: Optional[Sequence[int]] = None,
    num_workers: int = 0,
) -> DataLoader:
    """Shuffled training loader; pass ``lengths`` to group batches by length."""
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, shuffle=True, lengths=lengths)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collator, num_workers=num_workers, generator=_own_generator(seed))


def make_eval_loader(dataset, collator, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Evaluation loader in dataset order (no shuffling, nothing dropped)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator, num_workers=num_workers, generator=_own_generator(0))


def _own_generator(seed: int) -> torch.Generator:
    # Each new DataLoader iterator draws a worker base seed; from the global generator, that
    # draw would shift every later dropout mask, so a resumed run (which starts its iterator at
    # another moment) would drift from an uninterrupted one.
    return torch.Generator().manual_seed(seed)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Point the loader's batch sampler (also when wrapped by Accelerate) at ``epoch``."""
    if hasattr(loader, "set_epoch"):
        # Accelerate's DataLoaderShard re-applies its own epoch count to the sampler at every
        # __iter__; a resumed run must move that count too, or it replays epoch 0's order.
        loader.set_epoch(epoch)
    sampler = loader.batch_sampler
    # Accelerate wraps our sampler (BatchSamplerShard.batch_sampler) on several processes.
    while sampler is not None and not isinstance(sampler, EpochBatchSampler):
        sampler = getattr(sampler, "batch_sampler", None)
    if sampler is not None:
        sampler.set_epoch(epoch)


def group_weights(batch_sizes: Sequence[int], accum: int) -> list[float]:
    """Loss weight of each micro-batch so that an accumulated step equals one big batch.

    Micro-batches ``[k*accum, (k+1)*accum)`` form optimizer step k. Weighting each
    micro-batch's mean loss by ``size / group size`` makes the summed gradient the
    mean over the group's examples, also when the last group is short or uneven.
    """
    weights = []
    for start in range(0, len(batch_sizes), accum):
        group = batch_sizes[start : start + accum]
        total = sum(group)
        weights.extend(size / total for size in group)
    return weights


def epoch_batch_sizes(loader: DataLoader) -> list[int]:
    """Sizes of the batches this loader yields this epoch (indices only, no data loaded)."""
    return [len(b) for b in loader.batch_sampler]
