"""Every command README and the docs pages show either runs here, as written (placeholders swapped
for small local assets), or is named below with the reason it does not: a moved module cannot leave
a documented command broken. Every ```python block of the docs runs too, unless it opens with
``# A sketch`` and says what it stands for."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {"README.md": README, **{f"docs/{p.relative_to(ROOT / 'docs')}": p.read_text()
                                 for p in sorted((ROOT / "docs").rglob("*.md"))}}
BIN = Path(sys.executable).parent

# Commands that train for minutes, need CUDA, run the whole matrix, or name a placeholder package:
# each is matched by a prefix and carries its reason.
NOT_RUN = {
    "bash .ci/setup.sh": "installs the environment this test runs in",
    "bash scripts/train.sh": "fine-tunes MiniLM on real MRPC (minutes)",
    "bash .ci/run": "the whole CI: tox over 4 environments",
    "MRPC_TORCH_PIN=": "installs a CUDA build of torch",
    "bash benchmarks/gpu_check.sh": "needs CUDA",
    ".mrpc-venv/bin/accelerate launch --multi_gpu": "needs several GPUs",
    "mrpc-check train": "fine-tunes (the CLI tests run train on a tiny model)",
    "mrpc-check sweep": "fine-tunes once per seed (tests/acceptance/test_sweep.py runs it on a tiny model)",
    ".mrpc-venv/bin/pytest": "a test tier: this suite runs inside one of them",
    "MRPC_DATA=../shared/data/glue/MRPC .mrpc-venv/bin/pytest -m slow": "the acceptance tier (minutes)",
    "tox": "the whole matrix",
    "pytest --pyargs mrpc_check.acceptance -m slow": "fine-tunes a pretrained model (minutes)",
    "mrpc-check verify --loop my_pkg.training:adapter": "names a user's package that does not exist here",
    ".mrpc-venv/bin/python benchmarks/": "benchmarks train for minutes",
    "ray start": "starts a Ray cluster node (tests/acceptance/test_sweep_ray.py starts one on 127.0.0.1)",
    "nodes=(": "reads a Slurm allocation",
    "srun ": "needs a Slurm allocation",
    "sleep ": "waits for the Slurm nodes above",
    ".mrpc-venv/bin/pip install -e '.[docs]'": "installs the docs tools (tox -e docs has its own)",
    ".mrpc-venv/bin/mkdocs build --strict": "the docs build: tox -e docs runs it, with the docs extra this environment may lack",
}


def shell_commands(text: str) -> list:
    """The command lines of a page's ```bash blocks, comments dropped, one per line."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


COMMANDS = [c for text in PAGES.values() for c in shell_commands(text)]
PYTHON = [(page, i, block) for page, text in PAGES.items()
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, flags=re.S))]


def reason_not_run(command: str):
    for prefix, reason in NOT_RUN.items():
        if command.startswith(prefix):
            return reason
    return None


RUN = list(dict.fromkeys(c for c in COMMANDS if reason_not_run(c) is None))


def test_readme_shows_commands_and_this_test_runs_the_quick_ones():
    assert len(shell_commands(README)) >= 8, "README's ```bash blocks were not found"
    assert len(COMMANDS) >= 40 and len(PAGES) >= 10, "the docs pages' ```bash blocks were not found"
    assert any(c.startswith("mrpc-check verify") for c in RUN) and any(c.startswith("pytest --pyargs") for c in RUN)
    assert any(not block.startswith("# A sketch") for _, _, block in PYTHON), "no runnable Python example in the docs"


@pytest.mark.parametrize("page, index, block", PYTHON, ids=[f"{p}:{i}" for p, i, _ in PYTHON])
def test_the_docs_python_example_runs(page, index, block, glue_dir, monkeypatch):
    """Each Python example runs as written from the repository root, offline, with MRPC_DATA pointed at
    a small local split; a sketch (first line ``# A sketch: ...``) only has to parse."""
    compile(block, f"{page} python block {index}", "exec")
    if block.startswith("# A sketch"):
        assert len(block.splitlines()[0]) > len("# A sketch: "), "a sketch says what it stands for"
        return
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MRPC_DATA", glue_dir)
    exec(compile(block, f"{page} python block {index}", "exec"), {"__name__": "__docs__"})


def localised(command: str, tiny_model_dir: str, glue_dir: str, tmp_path: Path) -> list:
    """The README line with its placeholders pointed at small local assets, as an argv."""
    argv = shlex.split(command.replace("...", ""))
    swaps = {"runs/a/model": tiny_model_dir, "DIR": glue_dir, "../shared/data/glue/MRPC": glue_dir,
             "m.json": str(tmp_path / "m.json"), "out.json": str(tmp_path / "out.json"), "b.json": str(tmp_path / "b.json"),
             "my_loop.py:adapter": "examples/my_loop.py:adapter"}
    argv = [swaps.get(a, a) for a in argv]
    if argv[0] == "mrpc-check":
        argv[0] = str(BIN / "mrpc-check")
    elif argv[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[1:]]
    # `inspect --model minilm` reads the real model's vocabulary; a tiny folder keeps it to seconds.
    return [tiny_model_dir if a == "minilm" else a for a in argv]


@pytest.mark.integration
@pytest.mark.parametrize("command", RUN)
def test_the_readme_command_runs(command, tiny_model_dir, glue_dir, tmp_path):
    argv = localised(command, tiny_model_dir, glue_dir, tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # A floor is a verdict on the model: the tiny random one fails it (exit 1) and that is the command
    # working. Everything else README shows must pass here as it does on a user's machine.
    # Behaviour thresholds and the checkpoint tests judge the model too: a tiny random one may fail them
    # (exit 1), never exit 2.
    # `behave` judges any classifier: the bag-of-words example predictor fails the defaults by design.
    judges = "behave " in command or "--mrpc-checkpoint" in command
    expected = (1,) if "min-f1" in command else (0, 1) if judges else (0,)
    assert done.returncode in expected, f"{command!r} -> exit {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "ModuleNotFoundError" not in done.stdout + done.stderr


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_two_commands_heading_gives_two_commands(page):
    """'Two commands on a fresh machine': the block under the heading holds exactly the main job and the tests."""
    text = PAGES[page]
    after = text[text.index("## Two commands on a fresh machine"):]
    block = re.search(r"```bash\n(.*?)```", after, flags=re.S).group(1)
    assert shell_commands(f"```bash\n{block}```") == ["bash scripts/train.sh", "bash .ci/run"]


def test_docs_pytest_page_lists_every_plugin_option():
    """Every --mrpc-* option the plugin registers is named on docs/pytest.md (a CI maintainer reads them there)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = (root / "mrpc_check" / "acceptance" / "plugin.py").read_text()
    page = (root / "docs" / "pytest.md").read_text()
    options = set(re.findall(r'addoption\(\s*f?"(--mrpc-[a-z-]+)', source))
    assert {"--mrpc-loop", "--mrpc-strict", "--mrpc-data"} <= options, options
    missing = sorted(o for o in options if f"`{o}" not in page and not o.startswith("--mrpc-behaviour-"))
    assert not missing, f"docs/pytest.md does not name {missing}"
