"""The GitHub Actions workflow users copy: it parses, and its jobs run what tox.ini, the markers and README promise."""

import configparser
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with transformers: pip install pyyaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def commands(job):
    return "\n".join(step.get("run", "") for step in job["steps"])


def tox_envs():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "tox.ini")
    return [e.strip() for e in ini["tox"]["env_list"].split(",")]


class TestWorkflow:
    def test_triggers(self, workflow):
        triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
        assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)

    def test_cpu_job_runs_the_tox_matrix(self, workflow):
        run = commands(workflow["jobs"]["cpu"])
        named = re.search(r"tox run -e ([\w,]+)", run).group(1).split(",")
        assert named == [e for e in tox_envs() if e != "acceptance"]

    def test_gpu_job_on_a_self_hosted_cuda_runner_and_never_for_forks(self, workflow):
        job = workflow["jobs"]["gpu"]
        assert {"self-hosted", "gpu"} <= set(job["runs-on"])
        assert "pull_request.head.repo.full_name == github.repository" in job["if"]
        assert re.search(r"pytest -m gpu\b", commands(job))
        assert "gpu" in (ROOT / "pyproject.toml").read_text()  # the marker it selects is declared

    def test_acceptance_only_on_schedule_or_by_hand(self, workflow):
        job = workflow["jobs"]["acceptance"]
        assert "schedule" in job["if"] and "workflow_dispatch" in job["if"] and "pull_request" not in job["if"]
        assert "tox run -e acceptance" in commands(job) and "acceptance" in tox_envs()

    def test_every_tox_env_the_workflow_names_exists(self, workflow):
        for job in workflow["jobs"].values():
            for envs in re.findall(r"tox run -e ([\w,]+)", commands(job)):
                assert set(envs.split(",")) <= set(tox_envs())

    def test_the_docs_name_the_workflow_and_its_jobs(self, workflow):
        page = (ROOT / "docs" / "pytest.md").read_text(encoding="utf-8")
        section = page.split("## CI on GitHub", 1)[1].split("\n## ", 1)[0]
        assert ".github/workflows/ci.yml" in section
        assert set(re.findall(r"^\| `([\w-]+)` \|", section, flags=re.M)) == set(workflow["jobs"])


class TestDocsEnvironment:
    def test_the_docs_env_installs_the_docs_extra_and_builds_strictly(self):
        import tomllib

        extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["docs"]
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(ROOT / "tox.ini")
        env = ini["testenv:docs"]
        assert [d.strip() for d in env["deps"].strip().splitlines()] == extra
        assert "mkdocs build --strict" in env["commands"] and "docs" in tox_envs()
        assert "strict: true" in (ROOT / "mkdocs.yml").read_text()
