"""Properties of pair encoding with the real bert-base-uncased WordPiece vocabulary."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrpc_check.testing import synthetic_mrpc
from mrpc_check.pipeline.tokenize import encode_pairs, max_length_for, token_lengths, tokenize_dataset

# Sentences: empty, ASCII words, any unicode (emoji, CJK, combining marks, controls), very long.
sentences = st.one_of(
    st.just(""),
    st.lists(st.sampled_from("the cat sat on mat said percent shares rose , . \"".split()), max_size=40).map(" ".join),
    st.text(max_size=120),
    st.text(alphabet="abcdefgh xyz", min_size=600, max_size=3000),
)
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])


class TestEncodePairs:
    @SETTINGS
    @given(a=sentences, b=sentences)
    def test_layout_is_cls_a_sep_b_sep(self, mrpc_tokenizer, a, b):
        tok = mrpc_tokenizer
        enc = encode_pairs(tok, a, b, max_length=512)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        seps = [i for i, t in enumerate(ids) if t == tok.sep_token_id]
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert len(seps) == 2  # [SEP] never appears inside a segment: the tokenizer escapes it
        first_sep = seps[0]
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        assert enc["attention_mask"] == [1] * len(ids)

    @SETTINGS
    @given(a=sentences, b=sentences, max_length=st.integers(min_value=8, max_value=64))
    def test_truncation_respects_max_length_and_trims_longer_first(self, mrpc_tokenizer, a, b, max_length):
        tok = mrpc_tokenizer
        full_a = tok(a, add_special_tokens=False)["input_ids"]
        full_b = tok(b, add_special_tokens=False)["input_ids"]
        enc = encode_pairs(tok, a, b, max_length=max_length)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        assert len(ids) <= max_length
        kept_a = types.count(0) - 2  # minus [CLS] and the first [SEP]
        kept_b = types.count(1) - 1  # minus the last [SEP]
        assert ids[1 : 1 + kept_a] == full_a[:kept_a] and ids[2 + kept_a : -1] == full_b[:kept_b]
        budget = max_length - 3
        if len(full_a) + len(full_b) <= budget:
            assert (kept_a, kept_b) == (len(full_a), len(full_b))
        else:
            # longest_first: tokens come off the longer side until both fit, so a trimmed side ends at
            # most one token shorter than the other (ties are broken either way by tokenizers versions).
            assert kept_a + kept_b == budget
            if kept_a < len(full_a):
                assert kept_a >= kept_b - 1
            if kept_b < len(full_b):
                assert kept_b >= kept_a - 1

    @SETTINGS
    @given(pairs=st.lists(st.tuples(sentences, sentences), min_size=1, max_size=6))
    def test_batched_equals_one_by_one_and_is_deterministic(self, mrpc_tokenizer, pairs):
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        batched = encode_pairs(mrpc_tokenizer, a, b, max_length=128)
        again = encode_pairs(mrpc_tokenizer, a, b, max_length=128)
        assert batched["input_ids"] == again["input_ids"]
        for i, (x, y) in enumerate(pairs):
            single = encode_pairs(mrpc_tokenizer, x, y, max_length=128)
            for key in ("input_ids", "token_type_ids", "attention_mask"):
                assert batched[key][i] == single[key]


class TestTokenizeDataset:
    @pytest.fixture(scope="class")
    @classmethod
    def tokenized(cls, mrpc_tokenizer):
        return synthetic_mrpc(20, 7, seed=3), tokenize_dataset(synthetic_mrpc(20, 7, seed=3), mrpc_tokenizer, max_length=32)

    def test_columns_and_format(self, tokenized):
        _, data = tokenized
        assert set(data["train"].column_names) == {"labels", "input_ids", "token_type_ids", "attention_mask"}
        assert data["train"].format["type"] == "torch"

    def test_labels_and_order_pass_through(self, tokenized):
        raw, data = tokenized
        for split in ("train", "validation"):
            assert data[split].with_format(None)["labels"] == raw[split]["label"]

    def test_lengths_match_unpadded_encodings(self, tokenized, mrpc_tokenizer):
        raw, data = tokenized
        lengths = token_lengths(data["train"])
        expected = [len(encode_pairs(mrpc_tokenizer, r["sentence1"], r["sentence2"], 32)["input_ids"]) for r in raw["train"]]
        assert lengths == expected and max(lengths) <= 32


class TestCachedTokenization:
    """Data from the Hub is cached on disk under the map's fingerprint: a fingerprint that misses
    something the output depends on would serve a stale tokenization (oracle: an uncached run)."""

    @pytest.fixture
    def on_disk(self, tmp_path):
        from datasets import DatasetDict, load_from_disk

        synthetic_mrpc(12, 6, seed=3).save_to_disk(str(tmp_path / "raw"))
        raw = load_from_disk(str(tmp_path / "raw"))
        assert isinstance(raw, DatasetDict) and raw["train"].cache_files  # cached, as the Hub's are
        return raw

    def test_another_truncation_length_is_not_served_from_the_cache(self, on_disk, mrpc_tokenizer):
        long = token_lengths(tokenize_dataset(on_disk, mrpc_tokenizer, max_length=64)["train"])
        short = token_lengths(tokenize_dataset(on_disk, mrpc_tokenizer, max_length=12)["train"])
        assert max(long) > 12 and max(short) == 12

    def test_another_vocabulary_is_not_served_from_the_cache(self, on_disk, mrpc_tokenizer):
        import copy

        word = max((w for r in on_disk["train"] for w in r["sentence1"].split()), key=len)
        other = copy.deepcopy(mrpc_tokenizer)  # the same class, one more vocabulary entry: a word's prefix
        other.add_tokens([word[:3].lower()])
        tokenize_dataset(on_disk, mrpc_tokenizer, max_length=64)
        served = tokenize_dataset(on_disk, other, max_length=64)["train"]["input_ids"]
        fresh = [encode_pairs(other, r["sentence1"], r["sentence2"], 64)["input_ids"] for r in on_disk["train"]]
        assert [list(map(int, x)) for x in served] == fresh

    def test_another_truncation_side_is_not_served_from_the_cache(self, on_disk, mrpc_tokenizer):
        import copy

        tokenize_dataset(on_disk, mrpc_tokenizer, max_length=12)
        left = copy.deepcopy(mrpc_tokenizer)
        left.truncation_side = "left"  # keeps each pair's end instead of its start
        served = tokenize_dataset(on_disk, left, max_length=12)["train"]["input_ids"]
        fresh = [encode_pairs(left, r["sentence1"], r["sentence2"], 12)["input_ids"] for r in on_disk["train"]]
        assert [list(map(int, x)) for x in served] == fresh

    def test_the_same_inputs_reuse_the_cache_whatever_ran_before(self, on_disk, mrpc_tokenizer):
        import copy

        tokenizer = copy.deepcopy(mrpc_tokenizer)  # no call made yet: no truncation state recorded
        first = tokenize_dataset(on_disk, tokenizer, max_length=64)["train"]
        tokenize_dataset(on_disk, tokenizer, max_length=12)
        again = tokenize_dataset(on_disk, tokenizer, max_length=64)["train"]
        assert again.cache_files == first.cache_files

    def test_fingerprinting_leaves_the_tokenizers_own_settings_as_they_were(self, mrpc_tokenizer):
        """The state is read with truncation and padding cleared, then both are put back as the last call left them."""
        import copy

        from mrpc_check.pipeline.tokenize import _tokenizer_state

        tokenizer = copy.deepcopy(mrpc_tokenizer)
        untouched = _tokenizer_state(copy.deepcopy(mrpc_tokenizer))
        tokenizer(["a b c d e f"], ["g h"], truncation="longest_first", max_length=7, padding="max_length")
        backend = tokenizer.backend_tokenizer
        before = (backend.truncation, backend.padding)
        assert before[0] and before[1]  # the call above left both set
        assert _tokenizer_state(tokenizer) == untouched  # what the last call set is not part of the state
        assert (backend.truncation, backend.padding) == before


class TestMaxLength:
    def test_requested_wins(self, mrpc_tokenizer):
        assert max_length_for(mrpc_tokenizer, requested=64) == 64

    def test_model_limits_and_sentinel(self, mrpc_tokenizer):
        class Cfg:
            max_position_embeddings = 128

        assert max_length_for(mrpc_tokenizer, Cfg()) == 128

        class Huge:
            model_max_length = int(1e30)

        assert max_length_for(Huge()) == 512


def pair_template(tok):
    """(prefix, middle, suffix) special ids around two sentences, read off the tokenizer itself."""
    a, b = tok("x", add_special_tokens=False)["input_ids"], tok("y", add_special_tokens=False)["input_ids"]
    ids = tok("x", "y")["input_ids"]
    start = next(i for i in range(len(ids)) if ids[i : i + len(a)] == a)
    end = next(i for i in range(start + len(a), len(ids)) if ids[i : i + len(b)] == b)
    return ids[:start], ids[start + len(a) : end], ids[end + len(b) :]


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
class TestPairLayoutAcrossArchitectures:
    """The layout is derived from each tokenizer, not hard-coded: BERT [CLS] a [SEP] b [SEP], RoBERTa <s> a </s></s> b </s>."""

    def test_templates_are_the_families_own(self, arch_tokenizers, arch):
        tok = arch_tokenizers[arch]
        prefix, middle, suffix = (tok.convert_ids_to_tokens(p) for p in pair_template(tok))
        expected = {"bert": (["[CLS]"], ["[SEP]"], ["[SEP]"]), "distilbert": (["[CLS]"], ["[SEP]"], ["[SEP]"]),
                    "roberta": (["<s>"], ["</s>", "</s>"], ["</s>"])}[arch]
        assert (prefix, middle, suffix) == expected

    @SETTINGS
    @given(a=sentences, b=sentences)
    def test_pair_is_prefix_a_middle_b_suffix(self, arch_tokenizers, arch, a, b):
        tok = arch_tokenizers[arch]
        prefix, middle, suffix = pair_template(tok)
        ids_a, ids_b = tok(a, add_special_tokens=False)["input_ids"], tok(b, add_special_tokens=False)["input_ids"]
        enc = encode_pairs(tok, a, b, max_length=100_000)
        assert enc["input_ids"] == prefix + ids_a + middle + ids_b + suffix
        assert enc["attention_mask"] == [1] * len(enc["input_ids"])
        if "token_type_ids" in enc:  # BERT: segment 0 through the middle, 1 after
            first = len(prefix) + len(ids_a) + len(middle)
            assert enc["token_type_ids"] == [0] * first + [1] * (len(enc["input_ids"]) - first)
        else:
            assert arch != "bert"

    @SETTINGS
    @given(a=sentences, b=sentences, max_length=st.integers(min_value=8, max_value=48))
    def test_truncation_fits_and_keeps_the_template(self, arch_tokenizers, arch, a, b, max_length):
        tok = arch_tokenizers[arch]
        prefix, middle, suffix = pair_template(tok)
        ids = encode_pairs(tok, a, b, max_length=max_length)["input_ids"]
        assert len(ids) <= max_length
        assert ids[: len(prefix)] == prefix and ids[len(ids) - len(suffix) :] == suffix
