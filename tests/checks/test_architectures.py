"""The battery on tiny RoBERTa and DistilBERT (tokenizers trained here, no token types):
our three loops pass every single-process check on both families."""

import pytest

from mrpc_check.checks.battery import check_names
from mrpc_check.checks.verdict import REGISTRY

@pytest.fixture(scope="session")
def arch_battery(arch_tokenizers):
    from mrpc_check.checks.contract import load_adapter
    from mrpc_check.checks.harness import Arch, Battery
    from mrpc_check.testing import make_tiny

    cache = {}

    def get(loop, arch):
        if (loop, arch) not in cache:
            tok = arch_tokenizers[arch]
            make = lambda seed=0: make_tiny(arch, tok, seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # noqa: E731
            cache[loop, arch] = Battery(load_adapter(loop), Arch(arch, tok, make))
        return cache[loop, arch]

    yield get
    for battery in cache.values():
        battery.close()


# Checks that judge what training produced (memorised permuted labels, a repeated run) rather
# than what the model is fed: their verdict does not hinge on the family's inputs, and they are
# the costly ones (label_control trains 12+ epochs). On these families they run with the
# integration tests; on BERT they run in the default tier (test_checks_on_our_loops.py).
OUTCOME_CHECKS = {"label_control", "seed"}
CASES = [pytest.param(loop, arch, name, id=f"{loop}-{arch}-{name}", marks=[pytest.mark.integration] if name in OUTCOME_CHECKS else [])
         for loop in ("manual", "accelerate", "trainer") for arch in ("roberta", "distilbert") for name in check_names(("fast",))]


@pytest.mark.parametrize("loop,arch,check_name", CASES)
def test_loop_passes_on_architecture(arch_battery, loop, arch, check_name):
    verdict = REGISTRY[check_name].run(arch_battery(loop, arch))
    assert verdict.passed, verdict.message()


@pytest.mark.parametrize("arch", ["roberta", "distilbert"])
def test_no_token_types_reach_the_model(arch_battery, arch):
    battery = arch_battery("manual", arch)
    assert not battery.has_token_types
    assert all("token_type_ids" not in f.keys for f in battery.base_run().observation.forwards)


@pytest.mark.parametrize("arch", ["roberta", "distilbert"])
def test_dropped_mask_is_caught_on_architecture(arch_tokenizers, arch):
    from mrpc_check.checks.broken import DropsAttentionMask
    from mrpc_check.checks.harness import Arch, Battery
    from mrpc_check.testing import make_tiny

    tok = arch_tokenizers[arch]
    battery = Battery(DropsAttentionMask(), Arch(arch, tok, lambda seed=0: make_tiny(arch, tok, seed=seed, hidden_dropout_prob=0.0,
                                                                                      attention_probs_dropout_prob=0.0)))
    try:
        for name in ("inputs", "padding"):
            assert REGISTRY[name].run(battery).status == "fail", name
    finally:
        battery.close()
