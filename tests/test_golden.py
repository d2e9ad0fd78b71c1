"""Pinned outputs: the default demo run and a seed-cluster run give the leaderboard and scores recorded in
tests/golden/ (apart from creation time, signature, timings, cache counters and compute speeds). A change
that alters any number fails here; regenerate the files only for a change meant to alter results:
    python -m tests.golden_outputs"""
import json
from pathlib import Path

from tests.conftest import SEED, compose_cfg, require_shared
from tests.golden_outputs import GOLDEN, steady_outputs


def _expected(name: str):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def test_default_demo_run_is_pinned(demo_run):
    out, _ = demo_run
    assert steady_outputs(out) == _expected("demo_run")


def test_seed_run_is_pinned(tmp_path):
    from bench.runner.pipeline import run

    run(compose_cfg(*seed_overrides(str(require_shared(SEED)), tmp_path)), tmp_path)
    assert steady_outputs(tmp_path) == _expected("seed_run")


def seed_overrides(seed_path: str, out: Path) -> list[str]:
    return ["dataset=folder", f"dataset.path={seed_path}", "summarizer=[lead3,random3,textrank,oracle]",
            f"cache.path={out}/cache.sqlite"]
