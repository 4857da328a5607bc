"""Shared, session-scoped objects for the suite: tokenized synthetic MRPC, loader builders, a tiny model folder
and a GLUE-layout data folder for end-to-end runs."""

import pytest

from mrpc_check.testing import GLUE_HEADER as HEADER
from mrpc_check.testing import synthetic_mrpc


@pytest.fixture(scope="session")
def tiny_tokenized(mrpc_tokenizer):
    """Synthetic MRPC-shaped pairs (48 train, 20 validation), tokenized with the real vocabulary."""
    from mrpc_check.testing import synthetic_mrpc
    from mrpc_check.pipeline.tokenize import tokenize_dataset

    return tokenize_dataset(synthetic_mrpc(48, 20, seed=0), mrpc_tokenizer, max_length=40)


@pytest.fixture(scope="session")
def loaders(mrpc_tokenizer):
    """``make(dataset, batch_size, seed=0, eval_dataset=None)`` -> (train_loader, eval_loader)."""
    from mrpc_check.pipeline.batching import make_collator, make_eval_loader, make_train_loader

    collator = make_collator(mrpc_tokenizer)

    def make(dataset, batch_size, seed=0, eval_dataset=None, eval_batch_size=8):
        train = make_train_loader(dataset, collator, batch_size, seed)
        evaluation = make_eval_loader(eval_dataset if eval_dataset is not None else dataset, collator, eval_batch_size)
        return train, evaluation

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model_factory, mrpc_tokenizer):
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_model_factory(seed=0).save_pretrained(folder)
    mrpc_tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory):
    """Synthetic pairs in the GLUE layout, with an unlabelled test.tsv."""
    folder = tmp_path_factory.mktemp("glue")
    data = synthetic_mrpc(40, 17, seed=1)
    for name, split in (("train.tsv", "train"), ("dev.tsv", "validation")):
        rows = [f"{r['label']}\t{2 * i}\t{2 * i + 1}\t{r['sentence1']}\t{r['sentence2']}" for i, r in enumerate(data[split])]
        (folder / name).write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    (folder / "test.tsv").write_text("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tA b .\tA b .\n", encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory):
    """Synthetic pairs in the raw MSR layout, with a labelled msr_paraphrase_test.txt (our real data has none)."""
    folder = tmp_path_factory.mktemp("raw-msr")
    data = synthetic_mrpc(40, 17, seed=1)
    test = synthetic_mrpc(2, 23, seed=7)["validation"]

    def rows(split, first_id):
        return [f"{r['label']}\t{first_id + 2 * i}\t{first_id + 2 * i + 1}\t{r['sentence1']}\t{r['sentence2']}" for i, r in enumerate(split)]

    (folder / "msr_paraphrase_train.txt").write_text("\n".join([HEADER, *rows(data["train"], 0), *rows(data["validation"], 1000)]) + "\n")
    (folder / "dev_ids.tsv").write_text("".join(f"{1000 + 2 * i}\t{1001 + 2 * i}\n" for i in range(len(data["validation"]))))
    (folder / "msr_paraphrase_test.txt").write_text("\n".join([HEADER, *rows(test, 5000)]) + "\n")
    return str(folder)


@pytest.fixture(scope="session")
def arch_tokenizers(mrpc_tokenizer):
    """Tokenizers of the three families the suite covers: real BERT WordPiece, and RoBERTa (byte-level
    BPE) and DistilBERT (WordPiece) tokenizers trained here on synthetic text."""
    from mrpc_check.testing import train_tokenizer

    return {"bert": mrpc_tokenizer, "roberta": train_tokenizer("roberta"), "distilbert": train_tokenizer("distilbert")}


@pytest.fixture(autouse=True)
def _curves_where_read(request, monkeypatch):
    """In-process runs draw curves.png only in tests that ask for it (the ``draws_curves`` fixture).

    Drawing one costs matplotlib's import on each worker and a PNG per run, in the ~50 quick tests
    that train through the CLI and never look at it; the tests that read the file request it.
    Runs in a subprocess (the integration tier) draw as users' runs do.
    """
    if "draws_curves" not in request.fixturenames:
        monkeypatch.setattr("mrpc_check.pipeline.run.draw_curves", lambda report, path: None)


@pytest.fixture
def draws_curves():
    """Request this to have in-process training runs draw curves.png, as the CLI does."""
    return True


# Module-scoped fixtures that train a model through the CLI (about a second each): under pytest-xdist
# the tests that read one run on the worker that built it, instead of each worker training it again.
SHARED_RUNS = {"uninterrupted", "killed_after_step_50", "baseline"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup, set in the root conftest)
def pytest_collection_modifyitems(items):
    for item in items:
        if SHARED_RUNS & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(f"runs-of-{item.nodeid.split('::')[0]}"))
