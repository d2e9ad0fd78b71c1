"""The scale benchmark (README "Speed"): every timing of a 1,000-cluster run, taken in one go as whole processes.

  python scripts/perf.py scale [--clusters 1000] [--big 5000] [--pairs 3] [--warm 3] [--baseline-ref REF]

Per pair, in turn (the order flips every other pair, so that a drifting machine hurts both sides alike):
  - `old`: the code at --baseline-ref (from `git archive`), one process, cold; only with --baseline-ref;
  - `one`: this code, one process, cold (an empty cache), then --warm re-runs on its cache;
  - `joblib`: this code, `-m shard=range(2) shards=2 hydra/launcher=joblib`, cold, then --warm re-runs;
  - `joblib1`: the same sweep with one shard (`shard=range(1) shards=1`), cold.
Then a --big cluster run (peak RSS against the 1,000-cluster run), and the launch floor: a Hydra app whose task
does nothing, run alone and as a 2-job joblib sweep (what any Hydra app pays to start and to launch jobs).

Checks, not only times: every warm leaderboard and scores.jsonl equals its cold run's, and every merged sweep
leaderboard equals the one-process run's (means, counts, CIs, paired tests). Writes results/perf/scale.json
and prints a Markdown table."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SUMMARIZERS = "summarizer=[lead3,random3,textrank,oracle]"
SWEEP = ["-m", "shard=range(2)", "shards=2", "hydra/launcher=joblib"]
ONE_SHARD_SWEEP = ["-m", "shard=range(1)", "shards=1", "hydra/launcher=joblib"]
NOOP_APP = textwrap.dedent('''\
    import hydra


    @hydra.main(version_base="1.3", config_path=None, config_name=None)
    def main(cfg) -> None:
        pass


    if __name__ == "__main__":
        main()
    ''')


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One whole process: wall seconds, user and system CPU seconds (its own and its reaped children's) and
    peak RSS (the largest single process) in MiB. A failed command stops the benchmark."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait again
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{err.read().decode()[-3000:]}")
    return {"wall_s": round(wall, 3), "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def bench_argv(data: Path, work: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench", *extra, "dataset=jsonl", f"dataset.path={data}", SUMMARIZERS,
            f"cache.path={work / name / 'cache.sqlite'}", f"results_dir={work / name / 'results'}"]


def newest_run(results: Path) -> Path:
    return max((p for p in results.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)


def comparable(run_dir: Path) -> Any:
    """What must not depend on caching or sharding: every row's means, counts, CIs and tests."""
    board = json.loads((run_dir / "leaderboard.json").read_text())
    rows = [{k: r.get(k) for k in ("summarizer", "rank", "means", "n_defined", "ci", "vs_next", "n_scored",
                                     "n_articles", "n_failed")} for r in board["rows"]]
    return rows, board.get("comparisons")


def cold_and_warm(label: str, argv: list[str], cwd: Path, env: dict[str, str] | None, results: Path,
                  n_warm: int) -> dict[str, Any]:
    cold = timed(argv, cwd, env)
    cold_dir = newest_run(results)
    print(f"{label} cold: {cold}", flush=True)
    warm, identical = [], []
    for _ in range(n_warm):
        warm.append(timed(argv, cwd, env))
        warm_dir = newest_run(results)
        identical.append(comparable(warm_dir) == comparable(cold_dir)
                         and (warm_dir / "scores.jsonl").read_bytes() == (cold_dir / "scores.jsonl").read_bytes())
    if warm:
        print(f"{label} warm: {[w['wall_s'] for w in warm]}, identical to cold: {all(identical)}", flush=True)
    return {"cold": cold, "warm": warm, "warm_identical_to_cold": all(identical), "run_dir": str(cold_dir)}


def baseline_tree(ref: str, work: Path) -> Path:
    """The code at `ref`, extracted with `git archive` (run as `python -m bench` from there)."""
    tree = work / f"code-{ref}"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def launch_floor(work: Path, n: int) -> dict[str, Any]:
    """A Hydra app with an empty task: one run, and a 2-job sweep through hydra-joblib-launcher."""
    app = work / "noop" / "app.py"
    app.parent.mkdir(parents=True, exist_ok=True)
    app.write_text(NOOP_APP)
    run = [timed([sys.executable, str(app), f"hydra.run.dir={work / 'noop' / 'run'}"], app.parent)["wall_s"]
           for _ in range(n)]
    sweep = [timed([sys.executable, str(app), "-m", "+shard=range(2)", "hydra/launcher=joblib",
                    f"hydra.sweep.dir={work / 'noop' / 'sweep'}"], app.parent)["wall_s"] for _ in range(n)]
    return {"run_s": run, "joblib_sweep_s": sweep}


def scale_benchmark(source: Path, n_clusters: int, n_big: int, pairs: int, n_warm: int, baseline_ref: str | None,
                    work: Path) -> dict[str, Any]:
    from scripts.perf import repeated_clusters

    work.mkdir(parents=True, exist_ok=True)
    data = work / f"rep{n_clusters}.jsonl"
    out: dict[str, Any] = {"input": repeated_clusters(source, n_clusters, data), "command_one":
                           " ".join(["bench", *bench_argv(data, work, "DIR")[3:]]),
                           "command_joblib": " ".join(["bench", *bench_argv(data, work, "DIR", *SWEEP)[3:]]),
                           "pairs": []}
    old = baseline_tree(baseline_ref, work) if baseline_ref else None
    old_env = dict(os.environ, PYTHONPATH=str(old)) if old else None
    for k in range(pairs):
        pair: dict[str, Any] = {}
        order = ["old", "one", "joblib1", "joblib"] if k % 2 == 0 else ["joblib", "joblib1", "one", "old"]
        for what in order:
            name = f"{what}{k}"
            if what == "old" and old:
                pair["old"] = timed(bench_argv(data, work, name), old, old_env)
                print(f"old cold: {pair['old']}", flush=True)
            elif what == "one":
                pair["one"] = cold_and_warm("one", bench_argv(data, work, name), REPO, None,
                                            work / name / "results", n_warm)
            elif what == "joblib1":
                pair["joblib1"] = timed(bench_argv(data, work, name, *ONE_SHARD_SWEEP), REPO)
                print(f"joblib1 cold: {pair['joblib1']}", flush=True)
            elif what == "joblib":
                pair["joblib"] = cold_and_warm("joblib", bench_argv(data, work, name, *SWEEP), REPO, None,
                                               work / name / "results", n_warm)
        pair["merged_equals_one_process"] = (comparable(Path(pair["joblib"]["run_dir"]))
                                             == comparable(Path(pair["one"]["run_dir"])))
        out["pairs"].append(pair)
    if n_big:
        big = work / f"rep{n_big}.jsonl"
        out["big_input"] = repeated_clusters(source, n_big, big)
        out["big_one"] = timed(bench_argv(big, work, "big"), REPO)
        print(f"{n_big} clusters: {out['big_one']}", flush=True)
    out["launch_floor"] = launch_floor(work, max(3, n_warm))
    out["summary"] = summary(out)
    return out


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """The targets' ratios, pair by pair (each ratio compares runs taken together)."""
    pairs = out["pairs"]
    s: dict[str, Any] = {
        "one_cold_s": [p["one"]["cold"]["wall_s"] for p in pairs],
        "joblib_cold_s": [p["joblib"]["cold"]["wall_s"] for p in pairs],
        "joblib_speedup": [round(p["one"]["cold"]["wall_s"] / p["joblib"]["cold"]["wall_s"], 2) for p in pairs],
        "joblib1_cold_s": [p["joblib1"]["wall_s"] for p in pairs],
        "joblib_speedup_over_one_shard_sweep": [round(p["joblib1"]["wall_s"] / p["joblib"]["cold"]["wall_s"], 2)
                                                for p in pairs],
        "merged_equals_one_process": all(p["merged_equals_one_process"] for p in pairs),
        "warm_identical_to_cold": all(p[w]["warm_identical_to_cold"] for p in pairs for w in ("one", "joblib")),
    }
    for what in ("one", "joblib"):
        warm = [w["wall_s"] for p in pairs for w in p[what]["warm"]]
        if warm:
            s[f"{what}_warm_s"] = warm
            s[f"{what}_warm_speedup_median"] = round(
                statistics.median(p[what]["cold"]["wall_s"] / statistics.median(w["wall_s"] for w in p[what]["warm"])
                                  for p in pairs), 1)
    if all("old" in p for p in pairs):
        s["old_cold_s"] = [p["old"]["wall_s"] for p in pairs]
        s["speedup_over_old"] = [round(p["old"]["wall_s"] / p["one"]["cold"]["wall_s"], 2) for p in pairs]
    if "big_one" in out:
        base = max(p["one"]["cold"]["peak_rss_mib"] for p in pairs)
        s["peak_rss_mib"] = {"small": [p["one"]["cold"]["peak_rss_mib"] for p in pairs],
                             "big": out["big_one"]["peak_rss_mib"],
                             "growth_vs_largest_small": round(out["big_one"]["peak_rss_mib"] / base - 1, 3)}
    floor = out["launch_floor"]
    s["launch_floor_median_s"] = {k: statistics.median(v) for k, v in floor.items()}
    return s


def markdown(out: dict[str, Any]) -> str:
    s = out["summary"]
    lines = ["| what | measured | goal |", "|---|---|---|"]
    if "speedup_over_old" in s:
        lines.append(f"| one process vs the old code, cold | old {s['old_cold_s']} s, this {s['one_cold_s']} s: "
                     f"**{s['speedup_over_old']}×** | ≥ 3× |")
    lines += [f"| `joblib` 2 shards vs one process, cold | one {s['one_cold_s']} s, joblib {s['joblib_cold_s']} s: "
              f"**{s['joblib_speedup']}×** | ≥ 1.6× |",
              f"| the same, against a 1-shard `joblib` sweep | joblib1 {s['joblib1_cold_s']} s: "
              f"**{s['joblib_speedup_over_one_shard_sweep']}×** | ≥ 1.6× |",
              f"| merged sweep leaderboard equals one process | {s['merged_equals_one_process']} | identical |"]
    for what in ("one", "joblib"):
        if f"{what}_warm_s" in s:
            lines.append(f"| warm re-run, {what} | {s[f'{what}_warm_s']} s: median **{s[f'{what}_warm_speedup_median']}×** "
                         f"of cold | ≥ 50× |")
    lines.append(f"| warm leaderboard and scores.jsonl equal cold | {s['warm_identical_to_cold']} | identical |")
    if "peak_rss_mib" in s:
        rss = s["peak_rss_mib"]
        lines.append(f"| peak RSS, {out['input']['clusters']} → {out['big_input']['clusters']} clusters | "
                     f"{rss['small']} → {rss['big']} MiB: **{100 * rss['growth_vs_largest_small']:+.1f}%** | < +30% |")
    floor = s["launch_floor_median_s"]
    lines.append(f"| launch floor: an empty Hydra task, one run / a 2-job joblib sweep | {floor['run_s']} s / "
                 f"{floor['joblib_sweep_s']} s (medians) | |")
    return "\n".join(lines)
