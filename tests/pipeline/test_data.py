from pathlib import Path

import pytest

from mrpc_check.pipeline.data import LABEL_NAMES, label_counts, load_mrpc
from mrpc_check.errors import DataError

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def write_glue(folder: Path, train_rows, dev_rows, newline="\n", bom=False, test_rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows, header in (("train.tsv", train_rows, HEADER), ("dev.tsv", dev_rows, HEADER),
                               ("test.tsv", test_rows, "index\t#1 ID\t#2 ID\t#1 String\t#2 String")):
        if rows is None:
            continue
        text = newline.join([header, *rows]) + newline
        (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return folder


GOOD_TRAIN = ["1\t1\t2\tHe said \" so .\tHe said so .", "0\t3\t4\tA cat .\tA dog ."]
GOOD_DEV = ["1\t5\t6\tYes .\tYes indeed ."]


@pytest.fixture(scope="module")
def shared_data(mrpc_data_source):
    glue = Path(mrpc_data_source)
    if not (glue / "train.tsv").is_file():
        pytest.skip("MRPC_DATA does not point at a GLUE MRPC folder (train.tsv, dev.tsv)")
    raw = glue.parent.parent / "mrpc"
    if not (raw / "msr_paraphrase_train.txt").is_file():
        pytest.skip(f"raw MSR files not found beside the GLUE folder (looked in {raw})")
    return glue, raw


class TestRealData:
    def test_sources_agree_row_for_row(self, shared_data):
        glue, raw = shared_data
        from_glue, from_raw = load_mrpc(glue), load_mrpc(raw)
        assert list(from_glue) == list(from_raw) == ["train", "validation"]
        for split in from_glue:
            assert from_glue[split].to_list() == from_raw[split].to_list()
            assert from_glue[split].features == from_raw[split].features

    def test_hub_split_sizes_and_balance(self, shared_data):
        glue, _ = shared_data
        data = load_mrpc(glue)
        assert (len(data["train"]), len(data["validation"])) == (3668, 408)
        assert label_counts(data["train"])["equivalent"] == 2474
        assert label_counts(data["validation"])["equivalent"] == 279
        assert data["train"]["idx"][:3] == [0, 1, 2] and data["validation"]["idx"][-1] == 407

    def test_schema_matches_the_hub(self, shared_data):
        data = load_mrpc(shared_data[0])
        f = data["train"].features
        assert f["label"].names == LABEL_NAMES
        assert f["idx"].dtype == "int32" and f["sentence1"].dtype == "string"

    def test_glue_root_folder_is_accepted(self, shared_data):
        assert len(load_mrpc(shared_data[0].parent)["validation"]) == 408

    def test_unbalanced_quotes_are_kept(self, shared_data):
        data = load_mrpc(shared_data[0])
        assert data["validation"][0]["sentence2"].startswith('" The foodservice')


class TestLayoutsThatMustWork:
    def test_crlf_and_bom(self, tmp_path):
        data = load_mrpc(write_glue(tmp_path / "g", GOOD_TRAIN, GOOD_DEV, newline="\r\n", bom=True))
        assert data["train"]["sentence2"] == ["He said so .", "A dog ."]
        assert data["train"]["label"] == [1, 0]

    def test_empty_sentences_and_unicode(self, tmp_path):
        rows = ["1\t1\t2\t\tÇa va ? — “oui” 東京", "0\t3\t4\tnaïve café\t"]
        data = load_mrpc(write_glue(tmp_path / "g", rows, GOOD_DEV))
        assert data["train"]["sentence1"] == ["", "naïve café"]
        assert data["train"]["sentence2"] == ["Ça va ? — “oui” 東京", ""]

    def test_glue_test_file_is_unlabelled(self, tmp_path):
        data = load_mrpc(write_glue(tmp_path / "g", GOOD_TRAIN, GOOD_DEV, test_rows=["0\t7\t8\tA .\tB ."]))
        assert data["test"]["label"] == [-1]

    def test_raw_layout_with_labelled_test_file(self, tmp_path):
        folder = tmp_path / "raw"
        folder.mkdir()
        (folder / "msr_paraphrase_train.txt").write_text("\ufeff" + "\n".join([HEADER, *GOOD_TRAIN, *GOOD_DEV]) + "\n", encoding="utf-8")
        (folder / "dev_ids.tsv").write_text("5\t6\n", encoding="utf-8")
        (folder / "msr_paraphrase_test.txt").write_text("\n".join([HEADER, "0\t9\t10\tX .\tY ."]) + "\n", encoding="utf-8")
        data = load_mrpc(folder)
        assert len(data["train"]) == 2 and data["validation"]["sentence1"] == ["Yes ."]
        assert data["test"]["label"] == [0]


class TestMalformedInput:
    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataError, match="does not exist: pass --data"):
            load_mrpc(tmp_path / "nope")

    def test_folder_with_neither_layout(self, tmp_path):
        (tmp_path / "readme.txt").write_text("hi")
        with pytest.raises(DataError, match="neither MRPC layout"):
            load_mrpc(tmp_path)

    def test_wrong_column_count_names_file_and_line(self, tmp_path):
        folder = write_glue(tmp_path / "g", [GOOD_TRAIN[0], "1\t3\t4\tonly one sentence"], GOOD_DEV)
        with pytest.raises(DataError, match=r"train\.tsv:3: expected 5 tab-separated columns, found 4"):
            load_mrpc(folder)

    @pytest.mark.parametrize("label", ["2", "-1", "yes", ""])
    def test_label_outside_0_1(self, tmp_path, label):
        folder = write_glue(tmp_path / "g", GOOD_TRAIN, [f"{label}\t5\t6\tA .\tB ."])
        with pytest.raises(DataError, match=r"dev\.tsv:2: label .* is not 0 or 1"):
            load_mrpc(folder)

    def test_empty_split(self, tmp_path):
        folder = write_glue(tmp_path / "g", GOOD_TRAIN, [])
        with pytest.raises(DataError, match="'validation' .* is empty"):
            load_mrpc(folder)

    def test_wrong_header(self, tmp_path):
        folder = write_glue(tmp_path / "g", GOOD_TRAIN, GOOD_DEV)
        (folder / "dev.tsv").write_text("a\tb\tc\td\te\n1\t5\t6\tA .\tB .\n")
        with pytest.raises(DataError, match="not the MRPC header"):
            load_mrpc(folder)

    def test_dev_id_missing_from_train_file(self, tmp_path):
        folder = tmp_path / "raw"
        folder.mkdir()
        (folder / "msr_paraphrase_train.txt").write_text("\n".join([HEADER, *GOOD_TRAIN]) + "\n")
        (folder / "dev_ids.tsv").write_text("1\t2\n99\t100\n")
        with pytest.raises(DataError, match="1 dev id pair.*99/100"):
            load_mrpc(folder)

    def test_not_utf8(self, tmp_path):
        folder = write_glue(tmp_path / "g", GOOD_TRAIN, GOOD_DEV)
        (folder / "dev.tsv").write_bytes(HEADER.encode() + b"\n1\t5\t6\tcaf\xe9\tB .\n")
        with pytest.raises(DataError, match="not UTF-8"):
            load_mrpc(folder)

    def test_hub_offline_says_what_to_pass(self, monkeypatch):
        import datasets

        def offline(*args, **kwargs):
            raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

        monkeypatch.setattr(datasets, "load_dataset", offline)
        with pytest.raises(DataError, match="pass --data DIR or set MRPC_DATA"):
            load_mrpc("hub")


class TestHubPath:
    def test_loads_nyu_mll_glue_mrpc(self, monkeypatch):
        import datasets

        from mrpc_check.testing import synthetic_mrpc

        seen = []
        monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: seen.append(args) or synthetic_mrpc(3, 2))
        assert len(load_mrpc("hub")["validation"]) == 2
        assert seen == [("nyu-mll/glue", "mrpc")]
