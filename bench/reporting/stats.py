"""Seeded statistics over clustered data: articles about one story are not independent, so every
resample draws whole clusters (with replacement) and pools their articles."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.types import BenchError


@dataclass(frozen=True)
class Interval:
    mean: float   # exact mean over all articles
    low: float
    high: float
    n: int        # articles
    n_clusters: int


@dataclass(frozen=True)
class PairedResult:
    difference: float  # mean(b) - mean(a), exact, over shared articles
    low: float
    high: float
    p_value: float     # two-sided, cluster sign-flip permutation test
    n: int
    n_clusters: int


def _grouped(values: Mapping[tuple[str, str], float]) -> tuple[np.ndarray, np.ndarray]:
    """(cluster, article) -> value  =>  per-cluster sums and counts, in sorted cluster order."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for (cluster, _), v in sorted(values.items()):
        sums[cluster] = sums.get(cluster, 0.0) + float(v)
        counts[cluster] = counts.get(cluster, 0) + 1
    keys = sorted(sums)
    return np.array([sums[k] for k in keys]), np.array([counts[k] for k in keys], dtype=float)


BLOCK_ELEMENTS = 1 << 20  # resamples are drawn in blocks of about this many draws: memory stays flat in the clusters


def _row_blocks(n_rows: int, n_columns: int) -> list[int]:
    """Row counts of consecutive blocks of an (n_rows, n_columns) draw. A generator's stream does not depend
    on how a draw is split into blocks, so the blocks hold exactly the rows of the single big draw."""
    step = max(1, BLOCK_ELEMENTS // max(1, n_columns))
    return [min(step, n_rows - start) for start in range(0, n_rows, step)]


def _resampled_means(sums: np.ndarray, counts: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = []
    for rows in _row_blocks(n_resamples, len(sums)):
        idx = rng.integers(0, len(sums), size=(rows, len(sums)))
        means.append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))
    return np.concatenate(means)


def _bootstrap(values: Mapping[tuple[str, str], float], n_resamples: int, seed: int, confidence: float):
    """Exact mean, percentile CI and the resampled means, resampling whole clusters."""
    sums, counts = _grouped(values)
    means = _resampled_means(sums, counts, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(math.fsum(values.values()) / len(values), float(low), float(high), len(values), len(sums)), means


def cluster_bootstrap_ci(values: Mapping[tuple[str, str], float], n_resamples: int = 1000, seed: int = 0,
                         confidence: float = 0.95) -> Interval:
    """Percentile CI of the article mean, resampling clusters. `values` maps (cluster, article) to a value."""
    if not values:
        raise BenchError("no values to bootstrap")
    return _bootstrap(values, n_resamples, seed, confidence)[0]


EXACT_PERMUTATION_MAX_CLUSTERS = 16


def cluster_sign_flip_p(values: Mapping[tuple[str, str], float], n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value that paired differences have mean 0, by flipping the sign of whole clusters'
    differences (a permutation test that respects clustering). Exact over all 2^C flips for C <= 16
    clusters, else `n_resamples` seeded random flips with p = (hits + 1) / (n + 1). With few clusters p
    cannot be small (2 clusters: p >= 0.5), which is the honest answer."""
    sums, counts = _grouped(values)
    total, observed = counts.sum(), abs(sums.sum())
    tolerance = 1e-12 * max(1.0, float(np.abs(sums).sum()))
    if len(sums) <= EXACT_PERMUTATION_MAX_CLUSTERS:
        signs = 1 - 2 * ((np.arange(2 ** len(sums))[:, None] >> np.arange(len(sums))) & 1)
        stats = np.abs(signs @ sums)
        return float(np.mean(stats >= observed - tolerance))
    rng = np.random.default_rng(seed)
    hits = 0
    for rows in _row_blocks(n_resamples, len(sums)):
        signs = rng.choice([-1.0, 1.0], size=(rows, len(sums)))
        hits += int(np.sum(np.abs(signs @ sums) >= observed - tolerance))
    return float((hits + 1) / (n_resamples + 1)) if total else 1.0


def paired_test(a: Mapping[tuple[str, str], float], b: Mapping[tuple[str, str], float],
                n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> PairedResult:
    """Paired comparison of two systems on the articles both have values for: the exact mean difference
    (b - a), its paired cluster-bootstrap CI, and the cluster sign-flip permutation p-value."""
    shared = sorted(set(a) & set(b))
    if not shared:
        raise BenchError("the two systems share no scored article")
    diffs = {k: float(b[k]) - float(a[k]) for k in shared}
    ci = _bootstrap(diffs, n_resamples, seed, confidence)[0]
    return PairedResult(ci.mean, ci.low, ci.high, cluster_sign_flip_p(diffs, max(n_resamples, 10000), seed),
                        ci.n, ci.n_clusters)


def as_values(rows: Sequence[Mapping], summarizer: str, metric: str) -> dict[tuple[str, str], float]:
    """Defined values of one metric for one summarizer from scores.jsonl rows; failures and Nones are left
    out here and counted by the leaderboard."""
    return {(r["cluster_id"], r["article_id"]): r["metrics"][metric] for r in rows
            if r["summarizer"] == summarizer and r["status"] == "ok" and r["metrics"].get(metric) is not None}
