"""The catalogue: each twin with the check aimed at it and what its message must say; the calibration table.

``python -m mrpc_check.checks.twins.catalogue`` prints the table docs/published-loops.md shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrpc_check.checks.twins.accelerated import *  # noqa: F401,F403  (the catalogue names every twin)
from mrpc_check.checks.twins.classic import *  # noqa: F401,F403
from mrpc_check.checks.twins.plain import PlainLoop
from mrpc_check.checks.twins.published import *  # noqa: F401,F403


@dataclass(frozen=True)
class Entry:
    loop: type  # the broken twin
    check: str  # the check aimed at it: the only root cause the whole battery may name
    bug: str  # the bug, as the docs' calibration table names it
    named: str  # what the check's message must say (it names the bug)
    status: str = "fail"  # the verdict: fail, or warn for a confined effect graded by its size
    near_miss: bool = False  # a small but real effect: the row shows the check's precision, not its reach
    extra: bool = False  # something the recipe never asked for, named as its own root cause (an extra, not a classic bug)


CATALOGUE = (
    Entry(SchedulerPerMicroBatch, "schedule", "scheduler stepped per micro-batch", "per micro-batch"),
    Entry(LossNotScaledForAccumulation, "accumulation", "loss not scaled for accumulation", "not scaled for accumulation"),
    Entry(LossDividedByAccumSteps, "accumulation", "short last micro-batch over-weighted (loss / accum)", "weighted equally", "warn"),
    Entry(AccelerateAccumulate, "accumulation", "accelerator.accumulate(): short last micro-batch over-weighted", "weighted equally", "warn"),
    Entry(ZeroGradOncePerEpoch, "gradients_cleared", "zero_grad misplaced (once per epoch)", "zero_grad"),
    Entry(NoTrainAfterEvaluation, "modes", "no model.train() after evaluation", "no model.train()"),
    Entry(NoEvalMode, "modes", "no model.eval() for evaluation", "no model.eval()"),
    Entry(DropsAttentionMask, "inputs", "attention mask dropped", "attention mask dropped"),
    Entry(DropsTokenTypes, "inputs", "token types dropped", "token types dropped"),
    Entry(EvaluatesOnTrainSplit, "evaluation", "evaluating on the train split", "train split"),
    Entry(TrainsOnEvaluationSplit, "label_control", "evaluation split trained on (label leak)", "evaluation split"),
    Entry(CachesEvaluationLabels, "label_control", "evaluation answers cached from the labels (no validation row trained on)",
          "validation labels reach the model"),
    Entry(EpochsHardCoded, "coverage", "epoch count hard-coded (3, whatever recipe.epochs says)", "trains 3 epochs"),
    Entry(SeedIgnored, "seed", "seed ignored", "seed ignored"),
    Entry(EpochNotSetOnSampler, "seed", "epoch not set on the sampler", "epoch not set"),
    Entry(ResumeSkipsOptimizerSteps, "resume", "resume skipping the wrong batches", "wrong batches"),
    Entry(ResumeReplaysAnotherShuffle, "resume", "resume replays another shuffle", "another shuffle"),
    Entry(ClipsBeforeUnscaling, "mixed_precision", "clipping before unscaling (fp16)", "before unscaling"),
    Entry(BareAcceleratorOnCpu, "process_group", "each rank alone: Accelerator() without cpu=True on a CPU", "never formed one process group"),
    Entry(ScheduleSizedBeforePrepare, "schedule_2proc", "schedule sized before prepare", "before accelerator.prepare"),
    Entry(GatherNotForMetrics, "evaluation_2proc", "gather instead of gather_for_metrics", "gather instead of gather_for_metrics"),
    Entry(PreparedSchedulerSizedAfterPrepare, "schedule_2proc", "scheduler sized after prepare and passed to prepare",
          "once per process"),
    # The bugs of published loops.
    Entry(DropsLastBatch, "coverage", "DataLoader(drop_last=True)", "drop_last", "warn"),
    Entry(AccumulatesOffByOne, "grouping", "accumulation off by one (step % accum == 0)", "step % grad_accum == 0"),
    Entry(IgnoresGradAccum, "grouping", "grad_accum ignored, not declared", "ignores recipe.grad_accum"),
    Entry(IgnoresClipping, "clipping", "max_grad_norm ignored, not declared", "ignores recipe.max_grad_norm"),
    Entry(ScheduleFloored, "schedule", "schedule sized len(loader) * epochs // accum", "floors"),
    Entry(ScheduleCountsMicroBatches, "schedule", "schedule sized in micro-batches", "micro-batches"),
    Entry(TorchDefaultWeightDecay, "optimizer", "torch.optim.AdamW's default weight decay 0.01", "default weight_decay=0.01"),
    Entry(HeadLeftOutOfOptimizer, "optimizer", "classification head left out of the optimizer", "left out of the optimizer"),
    Entry(DecaysBiasesAndLayerNorm, "optimizer", "biases and LayerNorm decayed", "biases and LayerNorm", "warn"),
    # Extras: what a loop does beyond the recipe, named as its own root cause (a choice warns, a silent change fails).
    Entry(ClipsWhenRecipeHasNone, "clipping", "a clip at 0.5 the recipe never asked for", "clips at norm 0.5", "warn", extra=True),
    Entry(WarmsUpWithoutRecipe, "schedule", "a warmup fixed in the loop, the recipe has none", "warms up over 2", "warn", extra=True),
    Entry(SmoothsLabels, "loss", "label smoothing 0.1 in the loop's own loss", "label smoothing 0.1", "warn", extra=True),
    Entry(FreezesEmbeddings, "frozen", "embeddings frozen by the loop", "freezes bert.embeddings", "warn", extra=True),
    Entry(SetsDropout, "dropout", "dropout 0.1 set for training", "sets dropout 0.1", "warn", extra=True),
    Entry(AveragesWeightsIntoModel, "outside_updates", "an average of the weights written into the model every step",
          "updated outside the optimizer", extra=True),
    # Near misses: what a loosened tolerance would let through.
    Entry(ScheduleOneStepLong, "schedule", "schedule sized one step long (lr 0.8 for 0.75 at step 4)", "lags", near_miss=True),
    Entry(WarmupOneStepShort, "schedule", "warmup one step short", "warmup of 1", near_miss=True),
    Entry(GradientOnePercentHigh, "accumulation", "every gradient 1 % high", "1.010x", near_miss=True),
    Entry(GradientLeaksOnePercent, "gradients_cleared", "1 % of the previous step's gradient kept", "not fully cleared", near_miss=True),
    Entry(ClipsOnePercentHigh, "clipping", "clipped to 1.01 x max_grad_norm", "1.01x max_grad_norm", near_miss=True),
    Entry(DropsOneEvaluationRow, "evaluation", "one evaluation row dropped", "dropped", near_miss=True),
    Entry(ResumeOneBatchEarly, "resume", "resume one micro-batch early", "wrong batches", near_miss=True),
)

plain_loop = PlainLoop()  # `mrpc-check verify --loop example`


def calibration_table() -> str:
    """The docs' calibration table: each catalogue bug, the check that caught it, and its message, run now."""
    from mrpc_check.checks.battery import run_battery
    from mrpc_check.checks.contract import load_adapter

    lines = ["| bug (broken twin in `mrpc_check/checks/twins/`) | row shows | check | verdict | what the check said |",
             "| --- | --- | --- | --- | --- |"]
    for entry in CATALOGUE:
        loop = load_adapter(f"mrpc_check.checks.twins:{entry.loop.__name__}")  # by spec: 2-process checks import it per rank
        verdict = next(v for v in run_battery(loop, checks=[entry.check]) if v.check == entry.check)
        said = verdict.bug if verdict.status in ("fail", "warn") else verdict.figure
        kind = "precision (near miss)" if entry.near_miss else ("extra" if entry.extra else "reach")
        lines.append(f"| {entry.bug} (`{entry.loop.__name__}`) | {kind} | `{entry.check}` | {verdict.status} | {said} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m mrpc_check.checks.twins.catalogue: print the calibration table
    print(calibration_table())
