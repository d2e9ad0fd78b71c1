"""The fault suite (issue 11): every row of the hardening table, kill -9 in each stage then a re-run,
a full disk under the results and under the cache, and a corrupted cache. Cheap summarizers and the
demo data only, so that the whole file runs in about two minutes on two cores."""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from bench.types import BenchError
from tests.conftest import REPO, read_jsonl, require_shared, run_cli, run_dir

CHEAP = "summarizer=[lead3,random3]"
DEMO_CLUSTER = REPO / "bench" / "demo" / "port-alder-bridge"
VOLATILE = ("created", "timings", "runtime_seconds", "cache", "throughput")


def one_line_error(proc, *needles: str) -> str:
    """Exit 2, no traceback, exactly one `bench: error:` line, which holds every needle."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bench: error:")]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --- configuration: one line, exit 2, before any work -----------------------------------------------------
@pytest.mark.parametrize("overrides, needles", [
    (["stats.confidence=1.5"], ["stats.confidence=1.5", "(0, 1)"]),
    (["consensus.min_support=abc"], ["consensus.min_support='abc'", "integer"]),
    (["dataset=folder"], ["dataset.path", "required"]),
    (["summarizer.lead3.k=0"], ["summarizer.lead3.k=0", ">= 1"]),
    (["matcher.alignment=foo"], ["matcher.alignment='foo'", "'max', 'mean', 'min', 'harmonic' or 'segments'"]),
    (["summarizer=hf_causal", "summarizer.hf_causal.model=/nonexistent/model-folder"],
     ["summarizer.hf_causal.model", "the model folder /nonexistent/model-folder does not exist"]),
])
def test_config_errors_are_one_line_before_any_work(tmp_path, overrides, needles):
    proc = run_cli(*overrides, f"results_dir={tmp_path / 'results'}", f"cache.path={tmp_path / 'c.sqlite'}")
    one_line_error(proc, *needles)
    assert not (tmp_path / "results").exists() and not (tmp_path / "c.sqlite").exists()  # nothing was started


def test_every_config_problem_is_listed_at_once(tmp_path):
    proc = run_cli("stats.confidence=1.5", "stats.alpha=0", "consensus.min_support=abc", f"results_dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len([x for x in proc.stderr.splitlines() if x.startswith("bench: error: config ")]) == 3


def test_results_dir_that_cannot_be_created_or_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    one_line_error(run_cli(f"results_dir={blocker / 'results'}", "cache.enabled=false"),
                   f"results_dir='{blocker / 'results'}'", "is not a folder")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    with _read_only(read_only):
        one_line_error(run_cli(f"results_dir={read_only / 'results'}", "cache.enabled=false"),
                       "results_dir=", "cannot be created")
        one_line_error(run_cli(f"results_dir={tmp_path / 'ok'}", f"cache.path={read_only / 'c.sqlite'}"),
                       "cache.path=", "cannot be written")


class _read_only:
    """A read-only folder: a read-only tmpfs mount as root (permission bits do not stop root), else chmod."""

    def __init__(self, path: Path):
        self.path, self.mounted = path, False

    def __enter__(self):
        if os.geteuid() == 0:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(self.path)], check=True)
            self.mounted = True
        else:
            self.path.chmod(0o500)
        return self.path

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", "--lazy", str(self.path)], check=True)
        else:
            self.path.chmod(0o700)


def test_missing_local_model_folder_is_named():
    from bench.summarizers.llm import TransformersSummarizer, local_model_path

    with pytest.raises(BenchError, match="the model folder /nonexistent/m does not exist"):
        local_model_path("/nonexistent/m")
    assert local_model_path("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    s = TransformersSummarizer("m", model="./no/such/folder")
    with pytest.raises(BenchError, match="does not exist"):
        s.load()


# --- data: unreadable files are recorded skips ------------------------------------------------------------
def test_binary_and_undecodable_files_are_recorded_skips(tmp_path):
    data = tmp_path / "cluster"
    shutil.copytree(DEMO_CLUSTER, data)
    (data / "zz-binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    (data / "zz-latin1.txt").write_bytes("Caf\u00e9 society reopened the bridge on Monday.".encode("latin-1"))
    proc = run_cli("dataset=folder", f"dataset.path={data}", "summarizer=lead3", f"results_dir={tmp_path / 'r'}",
                   f"cache.path={tmp_path / 'c.sqlite'}")
    assert proc.returncode == 0, proc.stderr
    out = run_dir(tmp_path / "r")
    skipped = {s["article_id"]: s for s in read_jsonl(out / "skipped.jsonl")}
    assert skipped["zz-binary"]["stage"] == "data" and "binary file" in skipped["zz-binary"]["reason"]
    assert "not valid utf-8 text" in skipped["zz-latin1"]["reason"]
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["rows"][0]["n_scored"] == 5  # the five good articles of the cluster were scored


# --- command line surface -----------------------------------------------------------------------------------
def test_help_lists_subcommands_and_version_is_benchs():
    from bench.runner.signature import bench_version

    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("leaderboard", "compare", "report", "meta-eval", "--version", "summarizer:"):
        assert command in proc.stdout
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"bench {bench_version()}"
    assert "Hydra" not in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["compare", "RUN", "RUN"], ["leaderboard", "RUN"]])
def test_a_closed_pipe_exits_quietly(args, finished_run):
    """`bench ... | head`: the reader is gone before bench writes; no BrokenPipeError traceback."""
    argv = [finished_run if a == "RUN" else a for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "bench", *map(str, argv)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader goes away at once
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 0


# --- runs that fail, or are killed, are marked --------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    proc = run_cli(CHEAP, f"results_dir={root}", f"cache.path={root / 'c.sqlite'}")
    assert proc.returncode == 0, proc.stderr
    return run_dir(root)


def test_a_failed_run_is_marked_and_refused(tmp_path, finished_run):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "only.txt").write_text("The council approved a budget of 40 million dollars on Monday after a long and "
                                     "heated debate about schools, roads and the future of the harbor district.")
    proc = run_cli("dataset=folder", f"dataset.path={lonely}", "summarizer=lead3", f"results_dir={tmp_path / 'r'}",
                   "cache.enabled=false")
    one_line_error(proc, "leave-one-out consensus needs at least 2")
    failed = next((tmp_path / "r").iterdir())
    status = json.loads((failed / "status.json").read_text())
    assert status["state"] == "failed" and "needs at least 2" in status["reason"]
    assert "run failed" in (failed / "cli.log").read_text() and "needs at least 2" in (failed / "cli.log").read_text()
    (failed / "leaderboard.json").write_text((finished_run / "leaderboard.json").read_text())  # even with a board
    for command in (["leaderboard", str(failed)], ["compare", str(finished_run), str(failed)], ["report", str(failed)]):
        one_line_error(run_cli(*command), "is not a finished run (failed:")
    assert json.loads((finished_run / "status.json").read_text())["state"] == "finished"


# --- never rank what was not measured --------------------------------------------------------------------
def test_readme_example_with_no_defined_recall_ranks_nothing_and_warns(tmp_path):
    proc = run_cli(CHEAP, "consensus.min_support=3", "matcher.support_threshold=0.7", f"results_dir={tmp_path}",
                   f"cache.path={tmp_path / 'c.sqlite'}")
    assert proc.returncode == 0, proc.stderr
    out = run_dir(tmp_path)
    board = json.loads((out / "leaderboard.json").read_text())
    assert [r["rank"] for r in board["rows"]] == [None, None]
    assert any("fewer than half" in w for w in board["warnings"])
    md = (out / "leaderboard.md").read_text()
    assert "| - | lead3 |" in md and "| - | random3 |" in md and "**Warning:**" in md and "| 1 |" not in md
    assert 'class="warn"' in (out / "report.html").read_text()
    assert "fewer than half" in (out / "cli.log").read_text()


def test_ranks_skip_unmeasured_rows():
    from bench.reporting.leaderboard import rank_and_warn

    def row(name, mean, n_defined):
        return {"summarizer": name, "means": {"m": mean}, "n_scored": 4, "n_defined": {"m": n_defined}}
    board = {"main_metric": "m", "rows": [row("a", 0.5, 4), row("b", 0.4, 2), row("c", None, 0)]}
    rank_and_warn(board)
    assert [r["rank"] for r in board["rows"]] == [1, 2, None]
    assert any("c: m is undefined" in w for w in board["warnings"])
    assert not any("fewer than half" in w for w in board["warnings"])  # 6 of 12: half, not fewer
    board["rows"][0]["n_defined"]["m"] = 0
    rank_and_warn(board)
    assert any("defined for only 2 of 12" in w for w in board["warnings"])


def test_compare_on_two_clusters_says_why_nothing_can_be_significant(finished_run):
    proc = run_cli("compare", str(finished_run), str(finished_run))
    assert proc.returncode == 0, proc.stderr
    assert "smallest possible p-value is 2/2^2 = 0.5" in proc.stdout
    from bench.reporting.leaderboard import smallest_p_value

    assert smallest_p_value(2) == 0.5 and smallest_p_value(5) == 2 / 32 and smallest_p_value(17) is None


# --- meta-eval ------------------------------------------------------------------------------------------------
def test_constant_vectors_are_detected_exactly():
    from bench.reporting.metaeval import correlations, is_constant

    equal = [0.1] * 3
    assert np.std(equal) > 0 and is_constant(equal)  # std is 1.4e-17: `std == 0` missed it
    assert not is_constant([0.1, 0.1, 0.1 + 1e-15])
    systems = ["a", "b", "c"]
    human = {(0, "a"): 0.1, (0, "b"): 0.5, (0, "c"): 0.9, (1, "a"): 0.2, (1, "b"): 0.4, (1, "c"): 0.8}
    harness = {(0, "a"): 0.2, (0, "b"): 0.4, (0, "c"): 0.7, (1, "a"): 0.1, (1, "b"): 0.1, (1, "c"): 0.1}
    r = correlations(harness, human, 2, systems)
    assert r["summary_skipped_constant"] == 1 and r["summary_kendall"] == pytest.approx(1.0)


def test_meta_eval_params_shipped_uses_the_configured_matcher_as_is(tmp_path):
    from hydra.utils import instantiate

    from bench.reporting.metaeval import load_realsumm, meta_evaluate, unit_pairs
    from tests.conftest import compose_cfg
    from tests.test_metaeval import planted

    root = planted(tmp_path)
    matcher = instantiate(compose_cfg("matcher=combined").matcher)
    shipped = meta_evaluate(root, matcher, None, ("human",), folds=2, params="shipped")
    assert shipped["params"] == "shipped" and shipped["protocol"].startswith("no fitting")
    data = load_realsumm(root)
    pairs, keys = unit_pairs(data, data.units)
    y = np.array([data.labels[s][i][j] for i, s, j in keys])
    decisions = np.array(matcher.support(pairs)) >= matcher.support_threshold
    assert shipped["settings"]["human"]["unit"]["accuracy"] == pytest.approx(float(np.mean(decisions == y)))
    refit = meta_evaluate(root, matcher, None, ("human",), folds=2, params="refit")
    assert refit["params"] == "refit" and "refitted" in refit["protocol"]
    proc = run_cli("meta-eval", str(root), "--params", "bogus")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


# --- shared data in CI ------------------------------------------------------------------------------------------
def test_missing_shared_data_fails_in_ci_and_skips_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared(tmp_path / "absent")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_shared(tmp_path / "absent")
    assert require_shared(tmp_path) == tmp_path


# --- kill -9 in each stage, then a re-run ------------------------------------------------------------------
STAGES = ("cleaning", "facts", "consensus", "summarizing", "scoring", "writing")


def _inject(stage: str, kill_at: int, counts: Path, results: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.fault_inject", stage, str(kill_at), str(counts), "--", CHEAP,
                           f"results_dir={results}", f"cache.path={cache}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, HYDRA_FULL_ERROR="0"))


def _stable(board: dict) -> dict:
    """The leaderboard without what differs between equal runs (times, cache counters, throughput, and the
    git state, which an edit of the tree during the test would change)."""
    out = {k: v for k, v in board.items() if k not in VOLATILE}
    out["signature"] = {k: v for k, v in board["signature"].items() if k not in ("git", "signature_string")}
    out["rows"] = [{k: v for k, v in r.items() if k != "throughput"} for r in board["rows"]]
    return out


def _cached_summaries(cache: Path) -> int:
    if not cache.exists():
        return 0
    with closing(sqlite3.connect(cache)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name='entries'").fetchall()
        return conn.execute("SELECT count(*) FROM entries WHERE namespace='summary'").fetchone()[0] if tables else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, counting the fault points of every stage."""
    root = tmp_path_factory.mktemp("reference")
    proc = _inject("none", 0, root / "counts.json", root / "r", root / "c.sqlite")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads((root / "counts.json").read_text())
    assert set(counts) == set(STAGES), counts
    return json.loads((run_dir(root / "r") / "leaderboard.json").read_text()), counts


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_in_a_stage_then_rerun_gives_the_same_board(stage, reference, tmp_path):
    board, counts = reference
    seed = int(os.environ.get("BENCH_FAULT_SEED", random.randrange(10**6)))
    kill_at = random.Random(f"{seed}:{stage}").randint(1, counts[stage])
    where = f"{stage} point {kill_at} of {counts[stage]} (BENCH_FAULT_SEED={seed})"
    cache = tmp_path / "c.sqlite"
    killed = _inject(stage, kill_at, tmp_path / "counts.json", tmp_path / "killed", cache)
    assert killed.returncode == -signal.SIGKILL, (where, killed.stderr[-2000:])
    killed_dir = next((tmp_path / "killed").iterdir())
    assert json.loads((killed_dir / "status.json").read_text())["state"] == "running"
    one_line_error(run_cli("report", str(killed_dir)), "is not a finished run (killed or crashed")
    finished_before = _cached_summaries(cache)

    proc = run_cli(CHEAP, f"results_dir={tmp_path / 'again'}", f"cache.path={cache}")
    assert proc.returncode == 0, (where, proc.stderr[-2000:])
    again = json.loads((run_dir(tmp_path / "again") / "leaderboard.json").read_text())
    assert _stable(again) == _stable(board), where
    computed = sum(t["computed"] for t in again["throughput"].values())
    cached = sum(t["cached"] for t in again["throughput"].values())
    assert cached == finished_before and computed + cached == 18, where  # nothing finished is recomputed


# --- a full disk ------------------------------------------------------------------------------------------------
class _small_disk:
    """A folder on a tmpfs of `size` (as root); elsewhere RLIMIT_FSIZE in the child (EFBIG on writes)."""

    def __init__(self, path: Path, size: str):
        self.path, self.size, self.mounted = path, size, False

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                                           str(self.path)]).returncode == 0
        return self

    def preexec(self):
        if not self.mounted:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = int(self.size.rstrip("k")) * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", "--lazy", str(self.path)], check=True)


def _bench(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, HYDRA_FULL_ERROR="0"), preexec_fn=preexec)


def test_full_disk_under_results_is_one_line_and_marked(tmp_path):
    with _small_disk(tmp_path / "small", "64k") as disk:
        proc = _bench(CHEAP, f"results_dir={disk.path / 'r'}", f"cache.path={tmp_path / 'c.sqlite'}",
                      preexec=disk.preexec)
        line = one_line_error(proc)
        assert "No space left on device" in line or "too large" in line, line
        if disk.mounted:
            status = json.loads((next((disk.path / "r").iterdir()) / "status.json").read_text())
            assert status["state"] == "failed" and "No space left" in status["reason"]


def test_full_disk_under_the_cache_keeps_it_readable(tmp_path):
    small = tmp_path / "small"
    with _small_disk(small, "128k") as disk:
        proc = _bench(CHEAP, f"results_dir={tmp_path / 'r'}", f"cache.path={small / 'c.sqlite'}", preexec=disk.preexec)
        line = one_line_error(proc, "the cache database failed")
        assert "full" in line or "too large" in line or "disk I/O" in line, line
        with closing(sqlite3.connect(small / "c.sqlite")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        shutil.copytree(small, tmp_path / "roomy")  # the same cache, given room: it is used and completed
    proc = _bench(CHEAP, f"results_dir={tmp_path / 'r2'}", f"cache.path={tmp_path / 'roomy' / 'c.sqlite'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "corrupted" not in proc.stdout + proc.stderr
    board = json.loads((run_dir(tmp_path / "r2") / "leaderboard.json").read_text())
    assert board["cache"]["hits"] > 0


# --- a corrupted cache -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "torn_pages"])
def test_corrupted_cache_is_set_aside_and_rebuilt(damage, finished_run, tmp_path):
    cache = tmp_path / "c.sqlite"
    shutil.copyfile(finished_run.parent / "c.sqlite", cache)
    with closing(sqlite3.connect(cache)) as conn:  # fold the WAL in, so that the file alone holds the data
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    blob = bytearray(cache.read_bytes())
    if damage == "garbage":
        blob[:] = os.urandom(len(blob))
    else:
        blob[4096:4096 + 3000] = b"\x55" * 3000  # page 2 onwards: a header that still says SQLite
    cache.write_bytes(bytes(blob))
    proc = run_cli(CHEAP, f"results_dir={tmp_path / 'r'}", f"cache.path={cache}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is corrupted" in proc.stdout + proc.stderr and "set aside as" in proc.stdout + proc.stderr
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == bytes(blob)  # kept for inspection, untouched
    with closing(sqlite3.connect(cache)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    board = json.loads((run_dir(tmp_path / "r") / "leaderboard.json").read_text())
    reference = json.loads((finished_run / "leaderboard.json").read_text())
    assert _stable(board) == _stable(reference)
