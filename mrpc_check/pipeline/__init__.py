"""mrpc_check.pipeline: the walkthrough's fine-tuning recipe, made exact, one module per stage.

data -> tokenize -> batching -> model -> train / train_accelerate / train_trainer (steplog,
checkpoint) -> evaluation -> report; :mod:`.run` calls them in that order. This is the ground
floor: nothing here imports the battery (:mod:`mrpc_check.checks`) or acceptance
(:mod:`mrpc_check.acceptance`). Acceptance rules reach :func:`.run.run_training` as an argument.
"""

# The orchestrator's names, as ``mrpc_check.pipeline.run_training`` worked before the pipeline was a
# folder; resolved on first use so that importing one stage (config, for the CLI) stays cheap.
_RUN = ("run_training", "run_evaluation", "inspect_pipeline", "fit", "labelled_test_split", "score_test_split")


def __getattr__(name):
    if name in _RUN:
        from mrpc_check.pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module 'mrpc_check.pipeline' has no attribute {name!r}")
