"""Stage 1: load GLUE MRPC as a ``datasets.DatasetDict``.

Three sources give the same splits, rows, order and labels as
``load_dataset("nyu-mll/glue", "mrpc")``:

* ``"hub"``: the Hub dataset itself (needs network or a warm HF cache);
* a folder in the GLUE layout: ``train.tsv``, ``dev.tsv``, optional ``test.tsv``
  (GLUE's unlabelled test file: label -1, as on the Hub);
* a folder of the raw GLUE source files: ``msr_paraphrase_train.txt`` +
  ``dev_ids.tsv``, optional ``msr_paraphrase_test.txt`` (labelled).

The TSV files are read with the standard ``csv`` module rather than
``load_dataset("csv")``: the files need quoting off (sentences hold unbalanced
``"``), the raw file starts with a BOM, and a malformed row must be reported
with its file and line, which pandas' tokenizer errors do not name.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable, Optional, Union

from mrpc_check.errors import DataError

HUB_ID = "nyu-mll/glue"
HUB_CONFIG = "mrpc"
LABEL_NAMES = ["not_equivalent", "equivalent"]

GLUE_FILES = ("train.tsv", "dev.tsv")
RAW_FILES = ("msr_paraphrase_train.txt", "dev_ids.tsv")
# Both layouts share these five columns; GLUE's test.tsv says "index" where the others say "Quality".
_LABELLED_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
_TEST_HEADER = ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]


def features():
    """The Hub's schema for nyu-mll/glue mrpc."""
    from datasets import ClassLabel, Features, Value

    return Features(
        {
            "sentence1": Value("string"),
            "sentence2": Value("string"),
            "label": ClassLabel(names=LABEL_NAMES),
            "idx": Value("int32"),
        }
    )


def load_mrpc(source: Union[str, os.PathLike] = "hub"):
    """Load MRPC from the Hub, a GLUE MRPC folder, or the raw MSR source files.

    Args:
        source: ``"hub"``, or a folder holding either layout (a GLUE root whose
            ``MRPC/`` subfolder holds the files works too).

    Returns:
        ``DatasetDict`` with ``train``, ``validation`` and, when present, ``test``.

    Raises:
        DataError: the source is missing, has neither layout, or a file is malformed.
    """
    if str(source) == "hub":
        return _load_hub()
    folder = Path(source).expanduser()
    if not folder.exists():
        raise DataError(f"MRPC data folder {str(folder)!r} does not exist: pass --data DIR (or set MRPC_DATA) to a GLUE MRPC folder")
    if not folder.is_dir():
        raise DataError(f"MRPC data source {str(folder)!r} is a file: pass the folder that holds it")
    if not _has(folder, GLUE_FILES) and not _has(folder, RAW_FILES) and (folder / "MRPC").is_dir():
        folder = folder / "MRPC"
    if _has(folder, GLUE_FILES):
        return _load_glue_folder(folder)
    if _has(folder, RAW_FILES):
        return _load_raw_folder(folder)
    raise DataError(
        f"{str(folder)!r} holds neither MRPC layout: expected {' + '.join(GLUE_FILES)} (GLUE) "
        f"or {' + '.join(RAW_FILES)} (raw MSR files)"
    )


def _has(folder: Path, names: Iterable[str]) -> bool:
    return all((folder / n).is_file() for n in names)


def _load_hub():
    import datasets

    from mrpc_check.hub import offline, unreachable

    why = None if offline() else unreachable()  # offline mode: datasets reads its cache, no probe needed
    if why:
        raise DataError(f"could not load {HUB_ID}/{HUB_CONFIG}: the Hub is {why}: pass --data DIR or set MRPC_DATA to a "
                        "GLUE MRPC folder, or set HF_HUB_OFFLINE=1 to use a cached copy")
    try:
        return datasets.load_dataset(HUB_ID, HUB_CONFIG)
    except Exception as exc:  # offline, no cache, auth, or a Hub outage all look alike to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"could not load {HUB_ID}/{HUB_CONFIG} from the Hub ({first[:160]}): "
            "pass --data DIR or set MRPC_DATA to a GLUE MRPC folder, or run with network"
        ) from exc


def _read_tsv(path: Path, header: list[str], alt_header: Optional[list[str]] = None) -> list[tuple[int, list[str]]]:
    """Rows of a five-column TSV as (line number, fields), header checked, BOM and CRLF tolerated."""
    try:
        # newline="" lets csv see "\r\n" itself; utf-8-sig drops the raw file's BOM.
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows = []
            for fields in reader:
                line = reader.line_num
                if line == 1:
                    got = [f.strip() for f in fields]
                    if got != header and got != alt_header:
                        shown = " | ".join(got)[:80]
                        raise DataError(f"{path}:1: header {shown!r} is not the MRPC header {' | '.join(header)!r}")
                    continue
                if not fields or fields == [""]:
                    continue  # a blank line (trailing newline) is not a row
                if len(fields) != len(header):
                    raise DataError(f"{path}:{line}: expected {len(header)} tab-separated columns, found {len(fields)}")
                rows.append((line, fields))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}): re-save the file as UTF-8") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}): check the path and its permissions") from exc
    return rows


def _label(path: Path, line: int, text: str) -> int:
    if text.strip() not in ("0", "1"):
        raise DataError(f"{path}:{line}: label {text!r} is not 0 or 1")
    return int(text)


def _labelled_rows(path: Path) -> list[dict]:
    return [
        {"label": _label(path, line, q), "id1": id1.strip(), "id2": id2.strip(), "sentence1": s1, "sentence2": s2}
        for line, (q, id1, id2, s1, s2) in _read_tsv(path, _LABELLED_HEADER)
    ]


def _to_dataset(rows: list[dict], split: str, origin: str):
    from datasets import Dataset

    if not rows:
        raise DataError(f"split {split!r} from {origin} is empty: check that the file holds rows below its header")
    return Dataset.from_dict(
        {
            "sentence1": [r["sentence1"] for r in rows],
            "sentence2": [r["sentence2"] for r in rows],
            "label": [r["label"] for r in rows],
            "idx": list(range(len(rows))),
        },
        features=features(),
        split=split,
    )


def _load_glue_folder(folder: Path):
    from datasets import DatasetDict

    splits = {
        "train": _to_dataset(_labelled_rows(folder / "train.tsv"), "train", str(folder / "train.tsv")),
        "validation": _to_dataset(_labelled_rows(folder / "dev.tsv"), "validation", str(folder / "dev.tsv")),
    }
    test_path = folder / "test.tsv"
    if test_path.is_file():
        # GLUE's test.tsv has no labels: -1, exactly as the Hub's test split.
        rows = [
            {"label": -1, "sentence1": s1, "sentence2": s2}
            for _, (_, _, _, s1, s2) in _read_tsv(test_path, _TEST_HEADER, alt_header=_LABELLED_HEADER)
        ]
        splits["test"] = _to_dataset(rows, "test", str(test_path))
    return DatasetDict(splits)


def _read_dev_ids(path: Path) -> list[tuple[str, str]]:
    ids = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for line, fields in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or fields == [""]:
                continue
            if len(fields) != 2:
                raise DataError(f"{path}:{line}: expected 2 tab-separated ids, found {len(fields)} columns")
            ids.append((fields[0].strip(), fields[1].strip()))
    return ids


def _load_raw_folder(folder: Path):
    from datasets import DatasetDict

    train_path = folder / "msr_paraphrase_train.txt"
    rows = _labelled_rows(train_path)
    dev_ids = _read_dev_ids(folder / "dev_ids.tsv")
    dev_set = set(dev_ids)
    present = {(r["id1"], r["id2"]) for r in rows}
    missing = [pair for pair in dev_ids if pair not in present]
    if missing:
        raise DataError(
            f"{folder / 'dev_ids.tsv'}: {len(missing)} dev id pair(s) not in {train_path.name}, "
            f"first {missing[0][0]}/{missing[0][1]}: use the dev_ids.tsv that ships with that file"
        )
    # GLUE's split: validation = pairs listed in dev_ids.tsv, train = the rest, both in file order.
    splits = {
        "train": _to_dataset([r for r in rows if (r["id1"], r["id2"]) not in dev_set], "train", str(train_path)),
        "validation": _to_dataset([r for r in rows if (r["id1"], r["id2"]) in dev_set], "validation", str(train_path)),
    }
    test_path = folder / "msr_paraphrase_test.txt"
    if test_path.is_file():
        splits["test"] = _to_dataset(_labelled_rows(test_path), "test", str(test_path))
    return DatasetDict(splits)


def label_counts(dataset) -> dict[str, int]:
    """How many rows of each label name (and 'unlabelled' for -1) a split holds."""
    names = dataset.features["label"].names
    counts: dict[str, int] = {}
    for label in dataset["label"]:
        key = names[label] if label >= 0 else "unlabelled"
        counts[key] = counts.get(key, 0) + 1
    return counts
