import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.cli import compose

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "data" / "seed-cluster"
PLANTED = json.loads((REPO / "bench" / "demo" / "planted.json").read_text())


def require_shared(path: Path) -> Path:
    """Shared read-only data (../shared): skipped where it is absent, except in CI (CI=true), where its
    absence fails the test, so that CI cannot pass without running it."""
    if not path.exists():
        message = f"{path} is not present (../shared holds the shared read-only data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return path


def compose_cfg(*overrides: str):
    return compose(list(overrides))


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache") / "cache.sqlite"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, session_cache):
    """The default benchmark (with the real SmolLM2) on the demo clusters, run once in-process."""
    from bench.runner.pipeline import run

    out = tmp_path_factory.mktemp("demo_run")
    board = run(compose_cfg(f"cache.path={session_cache}"), out)
    return out, board


@pytest.fixture(scope="session")
def demo_docs():
    """Cleaned, fact-split demo documents and their consensus, per cluster."""
    return build_docs(None)


@pytest.fixture(scope="session")
def seed_docs():
    return build_docs(str(require_shared(SEED)))


def build_docs(path):
    from hydra.utils import instantiate

    from bench.stages.data import FolderDataset
    from bench.types import Document

    cfg = compose_cfg()
    cleaner, facts, matcher = instantiate(cfg.clean), instantiate(cfg.facts), instantiate(cfg.matcher)
    builder = instantiate(cfg.consensus, matcher=matcher)
    out = {}
    for cluster in FolderDataset(path).load():
        docs = []
        for a in cluster.articles:
            ca, reason = cleaner.clean(a)
            if reason:
                continue
            p = facts.extract([(a.id, ca.text)])[0]
            docs.append(Document(cluster.id, a, ca.text, p.sentences, p.facts))
        out[cluster.id] = (docs, builder.build(cluster.id, docs))
    return out, matcher


def run_dir(results: Path) -> Path:
    return next(p.parent for p in sorted(results.rglob("leaderboard.json")))


@pytest.fixture(scope="session")
def subsets(tmp_path_factory):
    from scripts.perf import demo_subset_clusters

    return demo_subset_clusters(tmp_path_factory.mktemp("subsets") / "clusters.jsonl")


@pytest.fixture(scope="session")
def base_and_worse(subsets, tmp_path_factory):
    """The same summarizer name twice: lead3, then a deliberately worse lead3 (k=1), as a bad pull request."""
    root = tmp_path_factory.mktemp("compare")
    common = ["dataset=jsonl", f"dataset.path={subsets}", "summarizer=lead3", f"cache.path={root / 'cache.sqlite'}"]
    for name, extra in (("base", []), ("worse", ["summarizer.lead3.k=1"])):
        proc = run_cli(*common, *extra, f"results_dir={root / name}")
        assert proc.returncode == 0, proc.stderr
    return run_dir(root / "base"), run_dir(root / "worse")


