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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup, set in the root conftest)
def pytest_collection_modifyitems(items):
    """One xdist group per shared battery: every test that reads a battery runs on the worker that built it.

    Spread over workers at random, each worker would build the same battery and repeat its runs
    (our six loops' battery tests on 2 workers: 45.8 s with the groups, 48.1 s with --dist load).
    """
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        fixtures = getattr(item, "fixturenames", ())
        if "battery_for" in fixtures:
            loop = params.get("loop", "manual")
            item.add_marker(pytest.mark.xdist_group(f"battery-{loop}"))
        elif "arch_battery" in fixtures:
            item.add_marker(pytest.mark.xdist_group(f"battery-{params.get('loop')}-{params.get('arch')}"))
