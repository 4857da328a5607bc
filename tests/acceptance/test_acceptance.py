"""The packaged acceptance tests (mrpc_check/acceptance/test_acceptance.py), collected into this suite."""

from mrpc_check.acceptance.test_acceptance import (
    test_checkpoint_as_is,
    test_checkpoint_behaviour,
    test_the_loops_agree_on_the_real_model,
    test_walkthrough_recipe_on_cuda_bf16,
    test_walkthrough_recipe_reaches_the_floor,
)

__all__ = ["test_walkthrough_recipe_reaches_the_floor", "test_the_loops_agree_on_the_real_model", "test_walkthrough_recipe_on_cuda_bf16", "test_checkpoint_as_is",
           "test_checkpoint_behaviour"]
