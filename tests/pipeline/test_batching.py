"""Dynamic padding contract, sampler reproducibility, and accumulation weights."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mrpc_check.pipeline.batching import (
    EpochBatchSampler,
    epoch_batch_sizes,
    group_weights,
    make_collator,
    make_eval_loader,
    make_train_loader,
)


def features_from(lengths, labels, vocab_size=30522, seed=0):
    """Encodings as the tokenizer makes them: [CLS] ... [SEP] ... [SEP], unpadded."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, label in zip(lengths, labels):
        ids = [101] + torch.randint(1000, vocab_size, (n - 2,), generator=g).tolist() + [102]
        first = max(1, (n - 1) // 2)
        ids[first] = 102
        types = [0] * (first + 1) + [1] * (n - first - 1)
        out.append({"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * n, "labels": label})
    return out


batches = st.integers(min_value=1, max_value=12).flatmap(
    lambda k: st.tuples(st.lists(st.integers(3, 80), min_size=k, max_size=k), st.lists(st.integers(0, 1), min_size=k, max_size=k))
)


class TestCollator:
    @given(batch=batches, multiple=st.sampled_from([None, 8, 64]))
    def test_dynamic_padding_contract(self, mrpc_tokenizer, batch, multiple):
        lengths, labels = batch
        features = features_from(lengths, labels)
        out = make_collator(mrpc_tokenizer, multiple)(features)
        longest = max(lengths)
        expected = longest if multiple is None else math.ceil(longest / multiple) * multiple
        assert out["input_ids"].shape == (len(lengths), expected)
        assert out["attention_mask"].sum(dim=1).tolist() == lengths
        for row, (n, feat) in enumerate(zip(lengths, features)):
            assert out["input_ids"][row, :n].tolist() == feat["input_ids"]  # order kept, content untouched
            assert out["token_type_ids"][row, :n].tolist() == feat["token_type_ids"]
            assert (out["input_ids"][row, n:] == mrpc_tokenizer.pad_token_id).all()
            assert (out["token_type_ids"][row, n:] == 0).all()
            assert (out["attention_mask"][row, n:] == 0).all()
        assert out["labels"].dtype == torch.int64 and out["labels"].tolist() == labels


class TestEpochBatchSampler:
    @pytest.mark.parametrize("lengths", [None, list(range(50))])
    def test_each_index_once_per_epoch_and_reproducible(self, lengths):
        sampler = EpochBatchSampler(50, 8, seed=1, lengths=lengths)
        first = list(sampler)
        assert sorted(i for b in first for i in b) == list(range(50))
        assert [len(b) for b in first] == [8] * 6 + [2]  # the one partial batch comes last
        assert list(sampler) == first
        sampler.set_epoch(1)
        assert list(sampler) != first
        other_seed = EpochBatchSampler(50, 8, seed=2, lengths=lengths)
        assert list(other_seed) != first

    def test_length_grouping_cuts_padding(self):
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(10, 120, (800,), generator=g).tolist()

        def padding(sampler):
            total = sum(max(lengths[i] for i in b) * len(b) for b in sampler)
            return 1 - sum(lengths) / total

        random_pad = padding(EpochBatchSampler(800, 8, seed=0))
        grouped_pad = padding(EpochBatchSampler(800, 8, seed=0, lengths=lengths))
        assert grouped_pad < 0.1 * random_pad
        # batches stay shuffled: their mean lengths are not sorted
        means = [sum(lengths[i] for i in b) / len(b) for b in EpochBatchSampler(800, 8, seed=0, lengths=lengths)]
        assert means != sorted(means) and means != sorted(means, reverse=True)

    def test_no_shuffle_is_sequential(self):
        assert list(EpochBatchSampler(5, 2, seed=0, shuffle=False)) == [[0, 1], [2, 3], [4]]


class TestLoaders:
    def test_train_loader_order_depends_on_seed_and_epoch_only(self, mrpc_tokenizer):
        data = features_from([5 + i % 7 for i in range(20)], [i % 2 for i in range(20)])
        collator = make_collator(mrpc_tokenizer)
        a, b = (make_train_loader(data, collator, 4, seed=7) for _ in range(2))
        torch.manual_seed(0)
        first = [x["input_ids"] for x in a]
        torch.manual_seed(123)  # the global RNG does not matter
        second = [x["input_ids"] for x in b]
        assert all(torch.equal(x, y) for x, y in zip(first, second))
        assert epoch_batch_sizes(a) == [4] * 5

    def test_eval_loader_keeps_order_and_drops_nothing(self, mrpc_tokenizer):
        data = features_from([6] * 11, list(range(11)))
        loader = make_eval_loader(data, make_collator(mrpc_tokenizer), 4)
        assert torch.cat([b["labels"] for b in loader]).tolist() == list(range(11))


class TestGroupWeights:
    def test_even_groups(self):
        assert group_weights([4, 4, 4, 4], 2) == [0.5, 0.5, 0.5, 0.5]

    def test_uneven_last_micro_batch(self):
        # 14 examples, micro-batches of 4, accumulation 2: groups [4, 4] and [4, 2]
        assert group_weights([4, 4, 4, 2], 2) == [0.5, 0.5, 4 / 6, 2 / 6]

    def test_short_last_group(self):
        assert group_weights([4, 4, 4], 2) == [0.5, 0.5, 1.0]

    def test_no_accumulation(self):
        assert group_weights([8, 8, 3], 1) == [1.0, 1.0, 1.0]
