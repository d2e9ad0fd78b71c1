"""End to end through the console entry point and Hydra, in subprocesses."""
import json

from tests.conftest import read_jsonl, run_cli


def _only_run_dir(results):
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    return run


def test_default_run_writes_every_output(tmp_path, demo_run, session_cache):
    """The default CLI run, reading the cache the in-process default run filled: nothing is recomputed."""
    proc = run_cli(f"results_dir={tmp_path}", f"cache.path={session_cache}")
    assert proc.returncode == 0, proc.stderr
    run = _only_run_dir(tmp_path)
    for name in ("config.yaml", "articles.jsonl", "consensus.jsonl", "sources.jsonl", "summaries.jsonl",
                 "scores.jsonl", "skipped.jsonl", "leaderboard.json", "leaderboard.md"):
        assert (run / name).is_file(), name
    board = json.loads((run / "leaderboard.json").read_text())
    assert {r["summarizer"] for r in board["rows"]} == {"lead3", "random3", "textrank", "smollm2", "oracle"}
    assert all(t["computed"] == 0 and t["cached"] == 9 for t in board["throughput"].values())
    assert [r["means"] for r in board["rows"]] == [r["means"] for r in demo_run[1]["rows"]]
    sig = board["signature"]
    assert {"config_hash", "data_hash", "scorer_hash", "packages", "git", "python"} <= set(sig)
    assert sig["packages"]["rouge-score"] and sig["packages"]["spacy"]
    assert len(read_jsonl(run / "scores.jsonl")) == 5 * 9
    assert "| 1 | oracle |" in proc.stdout and "Signature:" in proc.stdout
    skipped = read_jsonl(run / "skipped.jsonl")
    assert [s["article_id"] for s in skipped] == ["social-embed"]


def test_multirun_gives_one_combined_leaderboard(tmp_path):
    proc = run_cli("-m", "summarizer=lead3,textrank", f"results_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    sweep = _only_run_dir(tmp_path)
    board = json.loads((sweep / "leaderboard.json").read_text())
    assert sorted(r["summarizer"] for r in board["rows"]) == ["lead3", "textrank"]
    assert "combined leaderboard" in proc.stdout
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0_summarizer=lead3", "1_summarizer=textrank"]  # job folders are named by their overrides
    merged = run_cli("leaderboard", *(str(sweep / j) for j in jobs))
    assert merged.returncode == 0 and "| lead3 |" in merged.stdout and "| textrank |" in merged.stdout


def test_jsonl_dataset_via_cli(tmp_path):
    rows = []
    for cid in ("c1",):
        for i, text in enumerate(["The city council approved a new budget of 40 million dollars on Monday after a long debate. "
                                  "The mayor said the budget funds three new schools.",
                                  "On Monday the city council approved a budget of 40 million dollars. Critics said the "
                                  "budget ignores road repairs, and the vote was seven to two.",
                                  "A 40 million dollar budget was approved by the city council on Monday. The budget "
                                  "funds three new schools, officials said, and takes effect in July."]):
            rows.append({"cluster_id": cid, "article_id": f"a{i}", "source": f"outlet{i}", "title": "Budget", "text": text})
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    proc = run_cli("dataset=jsonl", f"dataset.path={path}", "summarizer=lead3", "clean.min_words=5",
                   f"results_dir={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    board = json.loads((_only_run_dir(tmp_path / "out") / "leaderboard.json").read_text())
    assert board["rows"][0]["n_scored"] == 3


def _assert_clean_error(proc, text):
    assert proc.returncode != 0
    assert text in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_inputs_give_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_clean_error(run_cli("dataset=folder", f"dataset.path={empty}", f"results_dir={tmp_path}"),
                        "holds no .txt files")
    one = tmp_path / "one"
    one.mkdir()
    (one / "only.txt").write_text("The council approved a budget of 40 million dollars on Monday after a long and "
                                  "heated debate about schools, roads and the future of the harbor district.")
    _assert_clean_error(run_cli("dataset=folder", f"dataset.path={one}", f"results_dir={tmp_path}"),
                        "leave-one-out consensus needs at least 2")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"cluster_id": "c"}\n{not json}\n')
    _assert_clean_error(run_cli("dataset=jsonl", f"dataset.path={bad}", f"results_dir={tmp_path}"),
                        "bad.jsonl:2: malformed JSON")
    _assert_clean_error(run_cli("summarizer=nope", f"results_dir={tmp_path}"), "Could not find 'summarizer/nope'")
    _assert_clean_error(run_cli("matcher.align_treshold=0.3", f"results_dir={tmp_path}"), "align_treshold")
    _assert_clean_error(run_cli("matcher.alignment=foo", f"results_dir={tmp_path}"), "matcher.alignment='foo': must be one of")
    _assert_clean_error(run_cli("summarizer=smollm2", "summarizer.smollm2.overflow=x", f"results_dir={tmp_path}"),
                        "summarizer.smollm2.overflow='x': must be one of")
    _assert_clean_error(run_cli("report", str(tmp_path / "nope")), "no leaderboard.json")
    _assert_clean_error(run_cli("--cfg", "job", "-m", "shard=range(2)"), "Only one of --run, --multirun, --cfg")


def test_a_sweep_whose_merge_is_refused_fails_with_one_line(tmp_path):
    """One shard of two: the jobs finish, the merge is refused, and the sweep exits 2 (not 0) with one line.
    `-m` comes after overrides, as when a sweep is appended to a run's command line: still a sweep."""
    proc = run_cli("summarizer=[lead3]", "html=false", f"results_dir={tmp_path}", "-m", "shard=0", "shards=2")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(errors) == 1 and "could not merge the sweep" in errors[0] and "shard(s) 1 of 2 missing" in errors[0]
    assert "Traceback" not in proc.stderr


def test_ctrl_c_outside_a_run_is_one_line(monkeypatch, capsys):
    import pytest

    import bench.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.cli, "help_text", interrupted)
    with pytest.raises(SystemExit) as stop:
        bench.cli.main(["--help"])
    assert stop.value.code == 130 and capsys.readouterr().err == "bench: interrupted\n"


def test_a_sweep_job_with_a_bad_value_fails_alone(tmp_path):
    """A job that fails validation does not stop the others: they run and are merged, and the sweep exits 2
    naming the failed job."""
    proc = run_cli("-m", "consensus.min_support=-5,1", "summarizer=[lead3]", "html=false", f"results_dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "=== combined leaderboard of the sweep ===" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bench: error:")]
    assert len(errors) == 2 and "consensus.min_support=-5: must be a whole number >= 1" in errors[0]
    assert "1 job(s) of the sweep did not finish" in errors[1]
    (sweep,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (sweep / "leaderboard.json").is_file()


def test_html_clusters_must_be_a_count_or_null(tmp_path):
    proc = run_cli("html_clusters=0", "summarizer=[lead3]", f"results_dir={tmp_path}")
    assert proc.returncode == 2 and "config html_clusters=0:" in proc.stderr and "Traceback" not in proc.stderr
