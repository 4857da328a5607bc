"""Shared batteries: one per loop, built once per session and read by every check's test."""

import pytest


@pytest.fixture(scope="session")
def bert(mrpc_tokenizer):
    from mrpc_check.checks.harness import bert_arch

    return bert_arch(mrpc_tokenizer)


@pytest.fixture(scope="session")
def battery_for(bert):
    """``battery_for(spec)`` -> a cached Battery for a built-in loop name or adapter spec."""
    from mrpc_check.checks.contract import load_adapter
    from mrpc_check.checks.harness import Battery

    cache = {}

    def get(spec):
        if spec not in cache:
            cache[spec] = Battery(load_adapter(spec), bert)
        return cache[spec]

    yield get
    for battery in cache.values():
        battery.close()
