"""The coverage check at its boundaries: a row fed twice, a batch left out, fewer rows than a batch left out.

The battery's epoch is 22 rows in batches of 4 ([4, 4, 4, 4, 4, 2]): drop_last leaves out the 2 rows
of the short last batch (a warning); a full batch of 4 left out (an early break, a skipped batch), or
3 rows of one batch, fail; one batch fed twice fails.
"""

import pytest

from mrpc_check.checks.broken import DropsLastBatch, PlainLoop


class RepeatsFirstBatch(PlainLoop):
    """Feeds every epoch's first batch twice (a second pass over one batch)."""

    def group(self, batches, accum):
        batches = list(batches)
        return super().group([batches[0]] + batches, accum)


class SkipsOneFullBatch(PlainLoop):
    """Never feeds every epoch's first batch: exactly one batch (4 rows) left out."""

    def group(self, batches, accum):
        return super().group(list(batches)[1:], accum)


class BreaksBeforeTheLastFullBatch(PlainLoop):
    """Stops every epoch one full batch early but still feeds the short last one: 4 rows left out, not the tail."""

    def group(self, batches, accum):
        batches = list(batches)
        return super().group(batches[:-2] + batches[-1:], accum)


class DropsThreeRowsOfOneBatch(PlainLoop):
    """Keeps one row of every epoch's first batch: 3 rows left out, fewer than a batch, and not the tail."""

    def group(self, batches, accum):
        batches = list(batches)
        return super().group([{k: v[:1] for k, v in batches[0].items()}] + batches[1:], accum)


@pytest.mark.parametrize("loop,status,named", [
    (PlainLoop, "pass", ""),
    (DropsLastBatch, "warn", "drop_last=True"),
    (RepeatsFirstBatch, "fail", "repeated within an epoch"),
    (SkipsOneFullBatch, "fail", "dropped within an epoch"),
    (BreaksBeforeTheLastFullBatch, "fail", "dropped within an epoch"),
    (DropsThreeRowsOfOneBatch, "fail", "dropped within an epoch"),
], ids=lambda x: x.__name__ if isinstance(x, type) else None)
def test_coverage_at_its_boundaries(bert, loop, status, named):
    from mrpc_check.checks.battery import run_battery

    verdict = next(v for v in run_battery(loop(), bert, checks=["coverage"]) if v.check == "coverage")
    assert verdict.status == status, verdict.message()
    assert named in verdict.bug
    if status == "fail":
        missing = {"RepeatsFirstBatch": "4 fed twice", "SkipsOneFullBatch": "4 never fed", "BreaksBeforeTheLastFullBatch": "4 never fed",
                   "DropsThreeRowsOfOneBatch": "3 never fed"}[loop.__name__]
        assert missing in verdict.figure, verdict.figure
