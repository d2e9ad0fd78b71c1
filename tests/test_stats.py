import math

import numpy as np
import pytest

from bench.stats import cluster_bootstrap_ci, paired_bootstrap
from bench.types import BenchError


def _values(seed=0, shift=0.0, clusters=8, per=5):
    rng = np.random.default_rng(seed)
    out = {}
    for c in range(clusters):
        level = rng.uniform(0.2, 0.8)  # clusters differ: articles within one are correlated
        for a in range(per):
            out[(f"c{c}", f"a{a}")] = float(np.clip(level + shift + rng.normal(0, 0.05), 0, 1))
    return out


def test_ci_is_seeded_exact_mean_and_contains_it():
    v = _values()
    ci = cluster_bootstrap_ci(v, n_resamples=500, seed=3)
    assert ci == cluster_bootstrap_ci(v, n_resamples=500, seed=3)
    assert ci != cluster_bootstrap_ci(v, n_resamples=500, seed=4)
    assert ci.mean == math.fsum(v.values()) / len(v)
    assert ci.low <= ci.mean <= ci.high and ci.n == 40 and ci.n_clusters == 8


def test_cluster_resampling_is_wider_than_article_resampling():
    v = _values()
    by_cluster = cluster_bootstrap_ci(v, n_resamples=2000, seed=0)
    as_singletons = cluster_bootstrap_ci({(f"{c}/{a}", a): x for (c, a), x in v.items()}, n_resamples=2000, seed=0)
    assert by_cluster.high - by_cluster.low > 1.5 * (as_singletons.high - as_singletons.low)


def test_paired_bootstrap_detects_a_consistent_drop_and_not_noise():
    base = _values(seed=1)
    worse = {k: x - 0.05 for k, x in base.items()}
    r = paired_bootstrap(base, worse, n_resamples=999, seed=0)
    assert r.difference == pytest.approx(-0.05) and r.high < 0 and r.p_value <= 0.002
    same = paired_bootstrap(base, dict(base), n_resamples=999, seed=0)
    assert same.difference == 0 and same.p_value == 1.0


def test_empty_inputs_are_errors():
    with pytest.raises(BenchError):
        cluster_bootstrap_ci({})
    with pytest.raises(BenchError):
        paired_bootstrap({("c", "a"): 1.0}, {("c", "b"): 1.0})
