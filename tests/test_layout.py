"""The house's three parts and the direction of its imports, read from the source (every import,
inside functions too): the pipeline at the ground, the battery above it, acceptance above both,
the CLI on top, and no module reaching back to a module that reaches it."""

import ast
from pathlib import Path

import pytest

import mrpc_check

PACKAGE = Path(mrpc_check.__file__).parent

# A module's layer is the first prefix of its name found here (longest prefixes first).
LAYERS = {
    "mrpc_check.errors": 0, "mrpc_check.hub": 0, "mrpc_check.compat": 0,
    "mrpc_check.pipeline": 1, "mrpc_check.testing": 1,
    "mrpc_check.checks": 2,
    "mrpc_check.acceptance": 3,
    "mrpc_check.cli": 4, "mrpc_check.__main__": 4,
}
# Upward imports that are there on purpose, each with its reason in a comment at the import.
EXCEPTIONS = {("mrpc_check.checks.recipe", "mrpc_check.cli")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str):
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return LAYERS[prefix]
    return None  # the package root: its lazy re-exports are the public surface, not a layer


def resolve(name: str) -> str:
    """``mrpc_check.checks.verdict.check`` -> the module it names (``mrpc_check.checks.verdict``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(name: str) -> set:
    """Every project module ``name`` imports, at module level or inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found |= {resolve(t) for t in targets if t.startswith("mrpc_check")}
    found.discard(name)
    found.discard("")
    return found


@pytest.fixture(scope="module")
def graph():
    """Every module's project imports (parsed when a layout test runs: collection in each xdist worker skips the 0.3 s)."""
    return {name: imports_of(name) for name in MODULES}


def test_the_three_parts_have_their_folders():
    for part in ("pipeline", "checks", "acceptance"):
        assert (PACKAGE / part / "__init__.py").is_file(), part
    stages = {"config", "data", "tokenize", "batching", "model", "train", "train_accelerate", "train_trainer",
              "steplog", "checkpoint", "evaluation", "stats", "report", "run"}
    assert stages <= {p.stem for p in (PACKAGE / "pipeline").glob("*.py")}
    assert (PACKAGE / "pipeline" / "metrics" / "mrpc" / "mrpc.py").is_file()
    assert {"floors", "sweep", "plugin", "test_acceptance"} <= {p.stem for p in (PACKAGE / "acceptance").glob("*.py")}
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith("__pycache__")}
    assert top == {"__init__.py", "__main__.py", "cli.py", "errors.py", "hub.py", "compat.py", "testing.py",
                   "pipeline", "checks", "acceptance"}, "a new top-level module belongs in one of the three parts"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) is not None))
def test_no_import_runs_up_the_layers(graph, name):
    upward = sorted(t for t in graph[name] if layer(t) is not None and layer(t) > layer(name)
                    and (name, t) not in EXCEPTIONS)
    assert not upward, f"{name} (layer {layer(name)}) imports {upward} from above it"


def test_every_exception_is_still_there_and_says_why(graph):
    for name, target in EXCEPTIONS:
        assert target in graph[name], f"{name} no longer imports {target}: drop the exception"
        assert "on purpose" in MODULES[name].read_text(), f"{name}: say at the import why it runs upward"


def test_no_import_cycle(graph):
    """Between modules (package __init__ files, which only re-export, left out)."""
    graph = {n: {t for t in ts if not MODULES[t].name == "__init__.py"} for n, ts in graph.items()
             if MODULES[n].name != "__init__.py"}
    seen, on_path, cycles = set(), [], []

    def visit(node):
        if node in on_path:
            cycles.append(on_path[on_path.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        on_path.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_a_broken_layer_rule_would_be_seen(tmp_path, monkeypatch):
    """The reader finds a function-level upward import: a pipeline module importing the battery."""
    fake = PACKAGE / "pipeline" / "run.py"
    source = fake.read_text() + "\n\ndef _probe():\n    from mrpc_check.checks.harness import Battery\n"
    copy = tmp_path / "mrpc_check" / "pipeline" / "run.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(source)
    monkeypatch.setitem(MODULES, "mrpc_check.pipeline.run", copy)
    assert "mrpc_check.checks.harness" in imports_of("mrpc_check.pipeline.run")


# Inside the battery: the bench (how a loop is run and watched), the facts inferred from a run, then the check
# families on top, each reading the bench and the facts, never another family (a change to one family cannot move
# another's verdicts); the verdict machinery (battery, the pytest route) gathers the families.
BENCH = {"contract", "observe", "harness", "adapters", "distributed", "verdict"}
FAMILIES = {"inputs", "padding", "coverage", "grouping", "schedule", "clipping", "optimizer", "extras", "gradients",
            "evaluation", "seed", "labels", "resume", "precision", "multiprocess", "recipe"}


def _checks_module(name: str) -> str:
    return name.split(".")[2] if name.startswith("mrpc_check.checks.") else ""


def test_check_families_read_the_bench_and_the_facts_never_one_another(graph):
    assert FAMILIES <= {p.stem for p in (PACKAGE / "checks").glob("*.py")}, "a family was renamed: update FAMILIES"
    crossing = {name: sorted(t for t in graph[name] if _checks_module(t) in FAMILIES - {_checks_module(name)})
                for name in MODULES if _checks_module(name) in FAMILIES}
    assert not any(crossing.values()), {n: t for n, t in crossing.items() if t}


def test_the_bench_and_the_facts_import_no_family(graph):
    lower = [n for n in MODULES if _checks_module(n) in BENCH | {"facts", "effective"}]
    reaching = {n: sorted(t for t in graph[n] if _checks_module(t) in FAMILIES) for n in lower}
    assert not any(reaching.values()), {n: t for n, t in reaching.items() if t}


def _documented_imports() -> list:
    """Every ``from mrpc_check... import names`` written in README.md, docs/ and examples/ (what users copy)."""
    import re

    root = PACKAGE.parent
    sources = [root / "README.md", *sorted((root / "docs").rglob("*.md")), *sorted((root / "examples").rglob("*.py"))]
    found = set()
    for path in sources:
        text = path.read_text()
        written = re.findall(r"from (mrpc_check[\w.]*) import \(([\w,\s]+)\)", text)  # parenthesized, over lines
        written += re.findall(r"from (mrpc_check[\w.]*) import ([\w, ]+)$", text, re.M)
        for module, names in written:
            found |= {(module, n.strip().split(" as ")[0]) for n in names.split(",") if n.strip()}
    return sorted(found)


@pytest.mark.parametrize("module, name", _documented_imports())
def test_every_documented_import_still_works(module, name):
    """Moving modules (checks/facts, checks/twins, the sweep's summary) must not break a name users import."""
    import importlib

    assert hasattr(importlib.import_module(module), name), f"from {module} import {name} no longer works"


def test_the_documented_imports_are_read():
    names = {n for _, n in _documented_imports()}
    assert {"LoopOutput", "trainer_adapter", "lightning_adapter", "load_adapter", "run_battery"} <= names, names
