"""The battery's bench: batteries over one model family share its tokenized pairs, never its Dataset objects."""

from mrpc_check.checks.harness import N_EVAL, N_TRAIN, Battery


def _loop_that_reformats(model, train, evaluation, collator, recipe):
    # A loop may change its datasets' format in place (set_format is not a copy): its battery's business only.
    train.set_format(None)
    evaluation.set_format("numpy")
    return [0] * len(evaluation)


def test_each_battery_gets_the_same_rows_in_its_own_dataset_objects(bert):
    first = Battery(_loop_that_reformats, bert)
    second = Battery(_loop_that_reformats, bert)
    try:
        assert len(first.data["train"]) == N_TRAIN and len(first.data["validation"]) == N_EVAL
        for split in ("train", "validation"):
            assert first.data[split] is not second.data[split]
            assert first.data[split].with_format(None)[:] == second.data[split].with_format(None)[:]
        first.run("reformats")
        assert first.data["train"].format["type"] is None  # the loop's change, on its own battery's view
        assert second.data["train"].format["type"] == "torch" and second.data["validation"].format["type"] == "torch"
        with Battery(_loop_that_reformats, bert) as third:
            assert third.data["validation"].format["type"] == "torch"
    finally:
        first.close()
        second.close()


def test_the_battery_runs_on_one_thread_and_puts_the_callers_back(bert):
    """However it ends: a loop that runs, and an adapter refused before any run (that one once left 1 thread set)."""
    import pytest
    import torch

    from mrpc_check.checks.battery import run_battery
    from mrpc_check.checks.contract import AdapterError

    seen = {}

    def loop(model, train, evaluation, collator, recipe):
        seen["threads"] = torch.get_num_threads()
        return [0] * len(evaluation)

    def refused(model, train, evaluation, collator, recipe):
        raise AssertionError("never run: its declaration is refused")

    refused.supports = {"no_such_feature"}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run_battery(loop, bert, checks=["inputs"])
        assert seen == {"threads": 1} and torch.get_num_threads() == 2
        with pytest.raises(AdapterError):
            run_battery(refused, bert, checks=["inputs"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_the_battery_makes_its_folder_on_first_use_and_removes_it(bert):
    """Only resume and the 2-process runs write files: a battery that never needs a folder leaves none
    behind, and one that does removes it on close() or at the end of a with-block."""
    import os

    with Battery(_loop_that_reformats, bert) as battery:
        battery.run("no-files")
        assert battery._tmp is None
        folder = battery.workdir("killed")
        assert os.path.isdir(folder) and battery.workdir("full").startswith(battery._tmp)
        root = battery._tmp
    assert not os.path.exists(root) and battery._tmp is None
    battery.close()  # twice is harmless
