"""Facts inferred from a run, the one place a check family reads what another found.

The families (one module each in :mod:`mrpc_check.checks`) read the bench (the contract, the observer, the harness)
and these, never one another: :mod:`.schedule` (the recipe's closed forms, the schedule a run fits), :mod:`.rows`
(epochs, groups, evaluation passes, an early stop), :mod:`.optimizer` (decay exemptions, membership),
:mod:`.gradients` (how a gradient is compared), :mod:`.clip` (a clip read off raw against applied gradients) and
:mod:`.loss` (the loop's loss read off the logits' gradients). The effective recipe (:mod:`mrpc_check.checks.effective`) is
built from them.
"""
