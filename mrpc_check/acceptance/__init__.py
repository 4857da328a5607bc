"""mrpc_check.acceptance: judge a fine-tuned model, whoever trained it.

:mod:`.floors` (the rules: floors, baseline refusal, degenerate runs, the validation/test gap),
:mod:`.sweep` (one recipe over several seeds), :mod:`.behaviour` (what the model learned: original,
symmetry, identity, unrelated, surface, negation, numbers, entity_swap, word_order), :mod:`.plugin` (the pytest plugin:
options, fixtures, markers) and the packaged tests in :mod:`.test_acceptance`, which users run as
``pytest --pyargs mrpc_check.acceptance``. The statistics behind a verdict (majority baseline, MCC,
bootstrap intervals, degeneracy) are measured by the pipeline for every report and live in
:mod:`mrpc_check.pipeline.stats`. This layer sits above the pipeline and the battery and imports
from both; neither imports it. Nothing heavy is imported here: the plugin loads in every pytest run.
"""
