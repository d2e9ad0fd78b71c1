"""Sharded runs (shards=N shard=i), their merge, per-shard caches, and the real launchers
(joblib, submitit_local, a local Ray head): a merged sharded run must equal the unsharded run exactly."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cache import Cache
from bench.runner.caching import CachedSummarizer, cache_path, local_file_system
from bench.runner.pipeline import run, shard_of, shard_layout
from bench.reporting.leaderboard import merge
from bench.reporting.records import load_run
from bench.types import Article, BenchError, Document
from tests.conftest import REPO, compose_cfg

SUMMARIZERS = "summarizer=[lead3,random3,oracle]"


def comparable(board):
    """What must not depend on the shard layout: every row's means, counts, CIs and tests."""
    rows = [{k: r[k] for k in ("summarizer", "means", "n_defined", "ci", "vs_next", "n_scored", "n_articles",
                                "n_failed")} for r in board["rows"]]
    return rows, board["comparisons"]


def sorted_scores(rows):
    return sorted(rows, key=lambda r: (r["summarizer"], r["cluster_id"], r["article_id"]))


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, subsets):
    out = tmp_path_factory.mktemp("whole")
    cache = out / "cache.sqlite"
    board = run(compose_cfg("dataset=jsonl", f"dataset.path={subsets}", SUMMARIZERS, f"cache.path={cache}",
                            "html=false"), out)
    return out, board, cache


@pytest.fixture(scope="module")
def shard_runs(tmp_path_factory, subsets):
    root = tmp_path_factory.mktemp("shards")
    for i in range(3):
        run(compose_cfg("dataset=jsonl", f"dataset.path={subsets}", SUMMARIZERS, f"cache.path={root}/cache.sqlite",
                        "cache.per_shard=true", "shards=3", f"shard={i}", "html=false", "chunk_clusters=2"), root / str(i))
    return root


def test_shard_assignment_is_a_stable_partition():
    ids = [f"cluster-{i}" for i in range(200)]
    owners = [shard_of(c, 4) for c in ids]
    assert owners == [shard_of(c, 4) for c in reversed(ids)][::-1]
    assert set(owners) == {0, 1, 2, 3}
    assert shard_of("cluster-0", 4) == int.from_bytes(__import__("hashlib").sha256(b"cluster-0").digest()[:8],
                                                      "big") % 4
    assert all(shard_of(c, 1) == 0 for c in ids)


@pytest.mark.parametrize("bad", [("shards=0",), ("shards=2", "shard=2"), ("shard=-1",), ("shards=2", "shard=x")])
def test_bad_layouts_are_refused(bad):
    with pytest.raises(BenchError, match="shard"):
        shard_layout(compose_cfg(*bad))


def test_merged_shards_equal_the_unsharded_run(unsharded, shard_runs):
    whole_dir, whole, _ = unsharded
    shards = [shard_runs / str(i) for i in range(3)]
    boards = [load_run(d)[0] for d in shards]
    assert {b["signature"]["data_hash"] for b in boards} == {whole["signature"]["data_hash"]}
    assert [b["signature"]["shards"]["index"] for b in boards] == [0, 1, 2]
    assert sum(b["dataset"]["n_clusters"] for b in boards) == whole["dataset"]["n_clusters"] == 21
    assert all(0 < b["dataset"]["n_clusters"] < 21 for b in boards)
    # each shard wrote its own cache file, named after its place in the layout
    assert sorted(p.name for p in shard_runs.glob("cache*.sqlite")) == [f"cache.shard{i}of3.sqlite" for i in range(3)]
    merged, scores = merge([(str(d), *load_run(d)) for d in reversed(shards)])
    assert comparable(merged) == comparable(whole)
    assert sorted_scores(scores) == sorted_scores(load_run(whole_dir)[1])
    assert "shards:3" in merged["signature"]["signature_string"]


def test_shard_sets_that_are_incomplete_duplicated_or_mixed_are_refused(unsharded, shard_runs):
    runs = {i: (str(shard_runs / str(i)), *load_run(shard_runs / str(i))) for i in range(3)}
    with pytest.raises(BenchError, match=r"shard\(s\) 1 of 3 missing"):
        merge([runs[0], runs[2]])
    with pytest.raises(BenchError, match="shard 2 of 3 is given twice"):
        merge([runs[0], runs[1], runs[2], runs[2]])
    whole_dir = unsharded[0]
    with pytest.raises(BenchError, match="different shard layouts"):
        merge([(str(whole_dir), *load_run(whole_dir)), runs[0], runs[1], runs[2]])


def test_cli_leaderboard_merges_shards_and_names_a_missing_one(shard_runs, unsharded, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "bench", "leaderboard", *(str(shard_runs / str(i)) for i in range(3)),
                         "--out", str(tmp_path / "merged")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert comparable(load_run(tmp_path / "merged")[0]) == comparable(unsharded[1])
    # the data-side files of the merge hold every shard's part
    whole_articles = (unsharded[0] / "articles.jsonl").read_text().splitlines()
    assert sorted((tmp_path / "merged" / "articles.jsonl").read_text().splitlines()) == sorted(whole_articles)
    bad = subprocess.run([sys.executable, "-m", "bench", "leaderboard", str(shard_runs / "0"), str(shard_runs / "1")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "shard(s) 2 of 3 missing" in bad.stderr


def test_merged_shard_caches_make_a_full_run_recompute_nothing(shard_runs, unsharded, subsets, tmp_path):
    merged = tmp_path / "merged.sqlite"
    proc = subprocess.run([sys.executable, "-m", "bench", "cache", "merge", str(merged),
                           *(str(shard_runs / f"cache.shard{i}of3.sqlite") for i in range(3))],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    board = run(compose_cfg("dataset=jsonl", f"dataset.path={subsets}", SUMMARIZERS, f"cache.path={merged}",
                            "html=false"), tmp_path / "warm")
    assert board["cache"]["misses"] == 0 and board["cache"]["hits"] > 0
    assert all(t["computed"] == 0 for t in board["throughput"].values())
    assert comparable(board) == comparable(unsharded[1])


def test_cache_merge_refuses_what_is_not_a_cache(tmp_path):
    (tmp_path / "junk.sqlite").write_text("not a database")
    with pytest.raises(BenchError, match="not a bench cache"):
        Cache(tmp_path / "into.sqlite").merge_from([tmp_path / "junk.sqlite"])
    with pytest.raises(BenchError, match="does not exist"):
        Cache(tmp_path / "into.sqlite").merge_from([tmp_path / "missing.sqlite"])


def test_hits_and_misses_count_distinct_keys_once(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("ns", [("a", 1)])
    assert cache.get_many("ns", ["a", "a", "b", "b", "b"]) == {"a": 1}
    assert (cache.hits, cache.misses) == (1, 1)
    cache.put_many("ns", [("b", 2)])
    cache.get_many("ns", ["a", "b"])  # already counted in this run
    assert (cache.hits, cache.misses) == (1, 1)
    off = Cache(None)
    off.get_many("ns", ["x", "x"])
    assert (off.hits, off.misses) == (0, 1)


def test_summary_key_holds_the_ids_a_seeded_summarizer_draws_from():
    from bench.summarizers.extractive import RandomK

    random3 = CachedSummarizer(RandomK(k=3, seed=0), {"_target_": "bench.summarizers.extractive.RandomK", "k": 3,
                                                      "seed": 0}, Cache(None))
    article = Article("a1", "outlet", "", "The same text.")
    same_text = [Document(c, article, article.text, (), ()) for c in ("cluster-1", "cluster-2")]
    keys = {random3.summary_key(d, None) for d in same_text}
    assert len(keys) == 2
    other_article = Document("cluster-1", Article("a2", "outlet", "", "The same text."), "The same text.", (), ())
    assert random3.summary_key(other_article, None) not in keys


def test_chunked_runs_write_the_same_scores(unsharded, subsets, tmp_path):
    board = run(compose_cfg("dataset=jsonl", f"dataset.path={subsets}", SUMMARIZERS, "cache.enabled=false",
                            "html=false", "chunk_clusters=1"), tmp_path)
    assert comparable(board) == comparable(unsharded[1])
    assert sorted_scores(load_run(tmp_path)[1]) == sorted_scores(load_run(unsharded[0])[1])


def test_parsing_in_two_processes_equals_one():
    from bench.stages.facts import ClauseFacts
    from bench.text.nlp import MIN_TEXTS_PER_PROCESS

    sentences = ["The bridge over the Alder river collapsed on Tuesday, and two people were hurt.",
                 "Officials said the span, which opened in 1962, had been inspected last year.",
                 "Rain fell all night while crews searched the water near the port."]
    items = [(f"t{i}", " ".join(sentences[(i + j) % 3] for j in range(1 + i % 3)))
             for i in range(2 * MIN_TEXTS_PER_PROCESS)]
    extractor = ClauseFacts()
    assert extractor.extract(items, n_process=2) == extractor.extract(items)


# --- the real launchers: a 2-shard sweep of the demo whose merge equals the unsharded run -------------

LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                       "hydra.launcher.cpus_per_task=1"],
    # a local Ray head on 127.0.0.1 with 2 CPUs, started by the launcher and stopped when the sweep ends
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init._node_ip_address=127.0.0.1", "+hydra.launcher.ray.init.include_dashboard=false"],
}


@pytest.fixture(scope="module")
def demo_unsharded(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_whole")
    return run(compose_cfg("summarizer=[lead3,random3]", f"cache.path={out}/cache.sqlite", "html=false"), out)


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_launcher_sweep_of_two_shards_merges_to_the_unsharded_run(launcher, demo_unsharded, tmp_path):
    env = dict(os.environ, HYDRA_FULL_ERROR="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "bench", "-m", "shard=range(2)", "shards=2",
                           "summarizer=[lead3,random3]", f"results_dir={tmp_path}", "run_name=sweep", "html=false",
                           *LAUNCHERS[launcher]], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    job_dirs = sorted(p for p in sweep.iterdir() if (p / "leaderboard.json").is_file())  # "0_shard=0,...", "1_..."
    assert [p.name.split("_")[0] for p in job_dirs] == ["0", "1"]
    jobs = [load_run(p)[0] for p in job_dirs]
    assert sorted(b["signature"]["shards"]["index"] for b in jobs) == [0, 1]
    assert all(b["dataset"]["n_clusters"] == 1 for b in jobs)  # the demo's two clusters fall one per shard
    merged = json.loads((sweep / "leaderboard.json").read_text())  # written by the sweep callback
    assert merged["signature"]["shards"] == {"count": 2, "combined": True,
                                             "assignment": jobs[0]["signature"]["shards"]["assignment"]}
    assert comparable(merged) == comparable(demo_unsharded)
    assert not (sweep / "report.html").exists()  # html=false holds for the sweep's merge too
    # cache.per_shard=auto: one shared file on a local disk, else one per shard
    shared = local_file_system(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("cache*.sqlite")) == (
        ["cache.sqlite"] if shared else ["cache.shard0of2.sqlite", "cache.shard1of2.sqlite"])
    # the merged sweep merges again with its own shards' data as one whole run
    again, _ = merge([(str(sweep), *load_run(sweep))])
    assert comparable(again) == comparable(demo_unsharded)


def test_a_warm_rerun_replays_whole_chunks_and_writes_the_same_files(subsets, tmp_path):
    overrides = ("dataset=jsonl", f"dataset.path={subsets}", SUMMARIZERS, f"cache.path={tmp_path}/c.sqlite",
                 "html=false", "chunk_clusters=8")
    cold = run(compose_cfg(*overrides), tmp_path / "cold")
    warm = run(compose_cfg(*overrides), tmp_path / "warm")
    assert cold["cache"]["replayed_chunks"] == 0 and warm["cache"]["replayed_chunks"] == 3  # 21 clusters
    assert warm["cache"]["misses"] == 0
    assert comparable(warm) == comparable(cold)
    for name in ("articles", "consensus", "sources", "scores", "skipped"):
        assert (tmp_path / "warm" / f"{name}.jsonl").read_text() == (tmp_path / "cold" / f"{name}.jsonl").read_text()
    warm_summaries = [json.loads(x) for x in (tmp_path / "warm" / "summaries.jsonl").read_text().splitlines()]
    assert all(r["meta"].pop("cached") for r in warm_summaries)
    assert warm_summaries == [json.loads(x) for x in (tmp_path / "cold" / "summaries.jsonl").read_text().splitlines()]
    assert all(t["computed"] == 0 and t["cached"] == t["articles"] for t in warm["throughput"].values())


def test_repeated_input_has_new_ids_and_the_same_texts(subsets, tmp_path):
    from bench.stages.data import read_jsonl
    from scripts.perf import repeated_clusters

    made = repeated_clusters(subsets, 50, tmp_path / "repeated.jsonl")
    rows = read_jsonl(tmp_path / "repeated.jsonl")
    source = read_jsonl(subsets)
    assert made == {"clusters": 50, "articles": len(rows), "distinct_clusters": 21}
    assert len({r["cluster_id"] for r in rows}) == 50
    assert len({(r["cluster_id"], r["article_id"]) for r in rows}) == len(rows)
    assert {r["text"] for r in rows} == {r["text"] for r in source}
    assert [r["text"] for r in rows[:len(source)]] == [r["text"] for r in source]


@pytest.mark.parametrize("bad", ["chunk_clusters=0", "spacy_processes=0"])
def test_bad_scaling_settings_are_refused(bad, tmp_path):
    with pytest.raises(BenchError, match=bad.split("=")[0]):
        run(compose_cfg("summarizer=[lead3]", "cache.enabled=false", "html=false", bad), tmp_path)


def test_build_signature_gives_the_signature_a_run_writes(unsharded, shard_runs):
    import yaml

    from bench.reporting.leaderboard import DEFAULT_STATS
    from bench.runner.signature import build_signature

    for run_dir in (unsharded[0], shard_runs / "1"):
        board = load_run(run_dir)[0]
        resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
        layout = {k: board["signature"]["shards"][k] for k in ("index", "count")}
        signature = build_signature(resolved, board["signature"]["data_hash"], layout,
                                    {**DEFAULT_STATS, **resolved["stats"]}, board["signature"]["bench_version"])
        assert signature == board["signature"]


def test_shards_share_a_cache_only_on_a_local_file_system(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\nserver:/home /home nfs4 rw 0 0\n"
                      "tmpfs /home/me/scratch tmpfs rw 0 0\n/dev/sdb /mnt/my\\040disk xfs rw 0 0\n")
    assert local_file_system(Path("/work/results/cache.sqlite"), str(mounts))
    assert not local_file_system(Path("/home/me/results/cache.sqlite"), str(mounts))  # NFS
    assert local_file_system(Path("/home/me/scratch/cache.sqlite"), str(mounts))  # the longest mount point wins
    assert local_file_system(Path("/mnt/my disk/cache.sqlite"), str(mounts))
    assert not local_file_system(Path("/x"), str(tmp_path / "no-such-table"))  # cannot tell: per shard
    layout = {"index": 1, "count": 4}
    settings = {"enabled": True, "path": "/home/me/results/cache.sqlite"}
    assert cache_path({**settings, "per_shard": True}, layout).name == "cache.shard1of4.sqlite"
    assert cache_path({**settings, "per_shard": False}, layout).name == "cache.sqlite"
    assert cache_path({**settings, "per_shard": "auto"}, {"index": 0, "count": 1}).name == "cache.sqlite"


def test_shards_on_one_machine_may_share_one_cache(demo_unsharded, tmp_path):
    """cache.per_shard=false: the shards of a local sweep share cache.path (no per-shard files), and their
    merge still equals the unsharded run."""
    boards = []
    for i in range(2):
        out = tmp_path / str(i)
        boards.append(run(compose_cfg("summarizer=[lead3,random3]", f"cache.path={tmp_path}/cache.sqlite",
                                      "cache.per_shard=false", "shards=2", f"shard={i}", "html=false"), out))
    assert [p.name for p in tmp_path.glob("cache*.sqlite")] == ["cache.sqlite"]
    assert {b["cache"]["path"] for b in boards} == {str(tmp_path / "cache.sqlite")}
    merged, _ = merge([(str(tmp_path / str(i)), *load_run(tmp_path / str(i))) for i in range(2)])
    assert comparable(merged) == comparable(demo_unsharded)


def test_shards_parse_their_own_key_range_first_then_meet_the_others_frontiers():
    from bench.cache import text_hash
    from bench.runner.caching import shard_order

    todo = sorted((text_hash(str(i)), str(i)) for i in range(40))
    assert shard_order(todo, 0.0, 1.0) == todo  # one process: key order
    for index, count in [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]:
        lo, hi = index / count, (index + 1) / count
        order = shard_order(todo, lo, hi)
        assert sorted(order) == todo
        own = [k for k, _ in todo if lo <= int(k[:8], 16) / 16 ** 8 < hi]
        assert [k for k, _ in order[:len(own)]] == own  # its own range, forward
        rest = [k for k, _ in order[len(own):]]
        below = [k for k, _ in todo if int(k[:8], 16) / 16 ** 8 < lo]
        assert rest[:len(below)] == below[::-1]  # then backward from just below its start


def test_scale_benchmark_summary_reports_each_pairs_ratios():
    """scripts/perf.py scale: ratios are taken pair by pair, and the table says what was measured."""
    from scripts.perf_scale import markdown, summary, timed

    def run(wall, rss=100.0):
        return {"wall_s": wall, "user_s": wall, "sys_s": 0.0, "peak_rss_mib": rss}

    pairs = [{"old": run(400.0), "one": {"cold": run(100.0), "warm": [run(2.0), run(1.0), run(4.0)],
                                         "warm_identical_to_cold": True},
              "joblib1": run(120.0), "joblib": {"cold": run(50.0), "warm": [run(5.0)], "warm_identical_to_cold": True},
              "merged_equals_one_process": True},
             {"old": run(300.0), "one": {"cold": run(60.0), "warm": [run(1.0)], "warm_identical_to_cold": True},
              "joblib1": run(70.0), "joblib": {"cold": run(40.0), "warm": [run(4.0)], "warm_identical_to_cold": False},
              "merged_equals_one_process": True}]
    out = {"input": {"clusters": 10}, "big_input": {"clusters": 50}, "pairs": pairs, "big_one": run(500.0, rss=110.0),
           "launch_floor": {"run_s": [0.3, 0.5, 0.4], "joblib_sweep_s": [1.2, 1.4, 1.3]}}
    s = summary(out)
    assert s["speedup_over_old"] == [4.0, 5.0] and s["joblib_speedup"] == [2.0, 1.5]
    assert s["joblib_speedup_over_one_shard_sweep"] == [2.4, 1.75]
    assert s["one_warm_speedup_median"] == 55.0  # medians of 100/2 and 60/1
    assert s["warm_identical_to_cold"] is False and s["merged_equals_one_process"] is True
    assert s["peak_rss_mib"]["growth_vs_largest_small"] == 0.1
    assert s["launch_floor_median_s"] == {"run_s": 0.4, "joblib_sweep_s": 1.3}
    out["summary"] = s
    table = markdown(out)
    assert "**[4.0, 5.0]×**" in table and "**+10.0%**" in table and "| False | identical |" in table
    measured = timed([sys.executable, "-c", "pass"], REPO)
    assert measured["wall_s"] > 0 and measured["peak_rss_mib"] > 0
    with pytest.raises(SystemExit, match="failed"):
        timed([sys.executable, "-c", "raise SystemExit(3)"], REPO)
