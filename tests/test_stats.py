import json
import math

import numpy as np
import pytest

from bench.reporting.stats import cluster_bootstrap_ci, cluster_sign_flip_p, paired_test
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


def test_paired_test_detects_a_consistent_drop_and_not_noise():
    base = _values(seed=1)
    worse = {k: x - 0.05 for k, x in base.items()}
    r = paired_test(base, worse, n_resamples=999, seed=0)
    assert r.difference == pytest.approx(-0.05) and r.high < 0
    assert r.p_value == pytest.approx(2 / 2 ** 8)  # exact: only the all-same-sign flips are as extreme
    same = paired_test(base, dict(base), n_resamples=999, seed=0)
    assert same.difference == 0 and same.p_value == 1.0
    noise = paired_test(base, {k: x + (0.03 if int(k[0][1:]) % 2 else -0.03) for k, x in base.items()})
    assert noise.p_value > 0.5


def test_sign_flip_is_honest_with_few_clusters_and_seeded_with_many():
    two = {("c0", "a"): 0.1, ("c1", "a"): 0.2}
    assert cluster_sign_flip_p(two) == 0.5  # 2 clusters can never give p < 0.05
    many = {(f"c{i}", "a"): 0.1 + 0.01 * i for i in range(20)}
    assert cluster_sign_flip_p(many, 2000, seed=1) == cluster_sign_flip_p(many, 2000, seed=1) == 1 / 2001


def test_empty_inputs_are_errors():
    with pytest.raises(BenchError):
        cluster_bootstrap_ci({})
    with pytest.raises(BenchError):
        paired_test({("c", "a"): 1.0}, {("c", "b"): 1.0})


def test_cached_statistics_equal_the_computed_ones(tmp_path):
    """A warm run reads the board's statistics from the cache; they equal a fresh computation."""
    from bench.cache import Cache
    from bench.reporting.leaderboard import statistics
    from bench.runner.caching import CachedStatistics

    rows = [{"summarizer": s, "cluster_id": f"c{i % 5}", "article_id": f"a{i}", "status": "ok",
             "metrics": {"m": (i * (3 if s == "x" else 7)) % 11 / 10}} for s in ("x", "y") for i in range(40)]
    stats = {"seed": 3, "resamples": 200, "confidence": 0.9, "alpha": 0.05}
    fresh = statistics(["x", "y"], ["m"], "m", rows, stats)
    cache = Cache(tmp_path / "c.sqlite")
    first = CachedStatistics(cache).compute(["x", "y"], ["m"], "m", rows, stats)
    second = CachedStatistics(cache).compute(["x", "y"], ["m"], "m", rows, stats)
    assert first == second == fresh
    assert len(cache._db().execute("SELECT key FROM entries WHERE namespace='statistics'").fetchall()) == 1


def test_statistics_keyed_by_the_scores_file_digest(tmp_path):
    """A run keys its statistics by the sha256 of the scores.jsonl it wrote (written and replayed lines alike):
    the same file reads the cached statistics, a file that differs in one row computes them afresh."""
    import hashlib

    from bench.cache import Cache
    from bench.reporting.records import RecordWriter
    from bench.runner.caching import CachedStatistics

    rows = [{"summarizer": s, "cluster_id": f"c{i % 5}", "article_id": f"a{i}", "status": "ok",
             "metrics": {"m": (i * (3 if s == "x" else 7)) % 11 / 10}} for s in ("x", "y") for i in range(40)]
    writer = RecordWriter(tmp_path)
    writer.write("scores", rows[0])
    writer.replay({"scores": [json.dumps(r, ensure_ascii=False) + "\n" for r in rows[1:]]})
    digest = writer.digest("scores")
    writer.close()
    assert digest == hashlib.sha256((tmp_path / "scores.jsonl").read_bytes()).hexdigest()

    stats = {"seed": 3, "resamples": 200, "confidence": 0.9, "alpha": 0.05}
    cache = Cache(tmp_path / "c.sqlite")
    compute = CachedStatistics(cache).compute
    first = compute(["x", "y"], ["m"], "m", rows, stats, scores_digest=digest)
    changed = [{**rows[0], "metrics": {"m": 0.0 if rows[0]["metrics"]["m"] else 1.0}}] + rows[1:]
    other = compute(["x", "y"], ["m"], "m", changed, stats, scores_digest=hashlib.sha256(b"other").hexdigest())
    assert compute(["x", "y"], ["m"], "m", rows, stats, scores_digest=digest) == first != other
    assert len(cache._db().execute("SELECT key FROM entries WHERE namespace='statistics'").fetchall()) == 2


def test_resamples_drawn_in_blocks_equal_one_big_draw(monkeypatch):
    """Memory stays flat in the clusters: draws come in blocks, and the numbers are those of one draw."""
    from bench.reporting import stats

    values = _values(seed=3, clusters=60, per=3)
    noisy = {k: x + (0.02 if int(k[0][1:]) % 3 else -0.01) for k, x in values.items()}
    whole = (cluster_bootstrap_ci(values, 1000, seed=4), cluster_sign_flip_p(noisy, 10000, seed=4),
             paired_test(values, noisy, 1000, seed=4))
    monkeypatch.setattr(stats, "BLOCK_ELEMENTS", 7 * 60)  # 7 rows a block; the last one shorter
    assert stats._row_blocks(1000, 60)[-1] == 1000 % 7
    assert (cluster_bootstrap_ci(values, 1000, seed=4), cluster_sign_flip_p(noisy, 10000, seed=4),
            paired_test(values, noisy, 1000, seed=4)) == whole


def test_streamed_key_is_the_key_of_the_whole_json():
    """The statistics' key and the data hash are fed to sha256 row by row, with the digest of one JSON text."""
    from bench.cache import key, streamed_key

    rows = [{"summarizer": "lead3", "metrics": {"r": 0.5, "n": None}, "by": {"2": [1, 2.25]}},
            {"summarizer": "é\"x", "metrics": {}}, [], [[1, [2]], ("t", 3)], "text", 7, None]
    for parts in [(), ("statistics",), ("statistics", ["a", "b"], {"seed": 0}, rows), (rows, rows[:1], [])]:
        assert streamed_key(*parts) == key(*parts)
