"""Leaderboard statistics, merging, `bench compare`, the HTML report (escaping, headless Chromium) and the
leaderboard JSON Schema."""
import json
import os
import shutil
import subprocess

import jsonschema
import pytest

from bench.reporting.records import read_records
from bench.types import BenchError
from scripts.perf import demo_subset_clusters
from tests.conftest import REPO, run_cli, run_dir

SCHEMA = json.loads((REPO / "bench" / "reporting" / "schemas" / "leaderboard.schema.json").read_text())
PWN_SCRIPT = "<script>document.body.setAttribute('data-pwned','script')</script>"
PWN_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"


def test_compare_fails_on_a_significant_regression_and_names_lost_facts(base_and_worse, tmp_path):
    base, worse = base_and_worse
    proc = run_cli("compare", str(base), str(worse), "--md", str(tmp_path / "c.md"), "--json", str(tmp_path / "c.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "c.json").read_text())
    (s,) = result["summarizers"]
    d = s["deltas"]["consensus_recall"]
    assert result["regressed"] and s["regressed"] and d["regressed"] and d["difference"] < -0.01 and d["p_value"] < 0.05
    assert d["high"] < 0
    lost = [f["text"] for w in s["worse_articles"] for f in w["lost_facts"]]
    assert lost and all(lost)
    md = (tmp_path / "c.md").read_text()
    assert md == proc.stdout.rstrip("\n") + "\n" or md in proc.stdout
    assert "regression" in md and "lost: " + lost[0] in md
    assert s["worse_clusters"]


def test_compare_passes_without_regression_and_with_tolerance(base_and_worse):
    base, worse = base_and_worse
    same = run_cli("compare", str(base), str(base))
    assert same.returncode == 0 and "no significant regression" in same.stdout
    improved = run_cli("compare", str(worse), str(base))  # the fix: better, so the gate passes
    assert improved.returncode == 0, improved.stdout
    tolerant = run_cli("compare", str(base), str(worse), "--tolerance", "0.9")
    assert tolerant.returncode == 0
    other_metric = run_cli("compare", str(base), str(worse), "--metric", "length_words")
    assert other_metric.returncode == 2 and "cannot gate" in other_metric.stderr


def test_compare_refuses_runs_on_different_data(base_and_worse, demo_run):
    base, _ = base_and_worse
    proc = run_cli("compare", str(base), str(demo_run[0]))
    assert proc.returncode == 2 and "data_hash differs" in proc.stderr and "Traceback" not in proc.stderr


def test_multirun_of_three_gives_merged_leaderboard_with_cis_and_significance(subsets, tmp_path):
    proc = run_cli("-m", "summarizer=lead3,random3,textrank", "dataset=jsonl", f"dataset.path={subsets}",
                   f"results_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    sweep = next(p for p in tmp_path.iterdir() if p.is_dir())
    board = json.loads((sweep / "leaderboard.json").read_text())
    jsonschema.validate(board, SCHEMA)
    assert sorted(r["summarizer"] for r in board["rows"]) == ["lead3", "random3", "textrank"]
    for r in board["rows"]:
        ci = r["ci"]["consensus_recall"]
        assert ci["low"] <= r["means"]["consensus_recall"] <= ci["high"] and ci["n_clusters"] >= 10
    assert [r["vs_next"] is None for r in board["rows"]] == [False, False, True]
    assert len(board["comparisons"]) == 3 and all(c["p_value"] is not None for c in board["comparisons"])
    md = (sweep / "leaderboard.md").read_text()
    assert md.count(" p=") == 2 and ("✓" in md or "·" in md)
    assert board["signature"]["bootstrap"] == {"seed": 0, "resamples": 1000, "confidence": 0.95, "alpha": 0.05}
    # the merge directory is a run directory: scores, summaries, HTML, and it can be merged or compared again
    for name in ("scores.jsonl", "summaries.jsonl", "consensus.jsonl", "articles.jsonl", "report.html"):
        assert (sweep / name).is_file(), name
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name[:1].isdigit())
    assert [p.name.split("_", 1)[0] for p in jobs] == ["0", "1", "2"]
    again = run_cli("leaderboard", *map(str, jobs), "--out", str(tmp_path / "m"))
    assert again.returncode == 0, again.stderr
    merged = json.loads((tmp_path / "m" / "leaderboard.json").read_text())
    assert [r["means"] for r in merged["rows"]] == [r["means"] for r in board["rows"]]
    assert [r["ci"] for r in merged["rows"]] == [r["ci"] for r in board["rows"]]  # seeded: reproducible


def test_merge_refuses_different_statistics_settings(subsets, tmp_path):
    common = ["dataset=jsonl", f"dataset.path={subsets}", "summarizer=lead3", f"cache.path={tmp_path / 'c.sqlite'}"]
    a = run_cli(*common, f"results_dir={tmp_path / 'a'}")
    b = run_cli(*common, "stats.seed=1", f"results_dir={tmp_path / 'b'}")
    assert a.returncode == b.returncode == 0
    proc = run_cli("leaderboard", str(run_dir(tmp_path / "a")), str(run_dir(tmp_path / "b")))
    assert proc.returncode == 2 and "bootstrap differ" in proc.stderr


def test_leaderboard_json_matches_the_schema(demo_run):
    jsonschema.validate(demo_run[1], SCHEMA)
    broken = dict(demo_run[1], rows=[{**demo_run[1]["rows"][0], "n_failed": -1}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_a_board_breaking_the_schema_is_refused_when_loaded(demo_run, tmp_path):
    from bench.reporting.records import load_board

    board = json.loads((demo_run[0] / "leaderboard.json").read_text())
    board["rows"][0]["n_failed"] = -1
    (tmp_path / "leaderboard.json").write_text(json.dumps(board))
    with pytest.raises(BenchError) as e:
        load_board(tmp_path)
    assert "\n" not in str(e.value) and str(tmp_path / "leaderboard.json") in str(e.value)
    assert "rows/0/n_failed" in str(e.value)
    proc = run_cli("report", str(tmp_path))  # the commands say so in one line
    assert proc.returncode == 2 and "rows/0/n_failed" in proc.stderr and "Traceback" not in proc.stderr
    del board["statistics"]
    (tmp_path / "leaderboard.json").write_text(json.dumps(board))
    with pytest.raises(BenchError, match="'statistics' is a required property"):
        load_board(tmp_path)


def test_typed_records_have_the_schema_keys():
    from bench.reporting import records

    defs = SCHEMA["$defs"]
    for typed, schema in ((records.Board, SCHEMA), (records.Row, defs["row"]), (records.Comparison, defs["comparison"]),
                          (records.Throughput, defs["throughput"]),
                          (records.Signature, SCHEMA["properties"]["signature"])):
        assert set(typed.__annotations__) == set(schema["properties"]), typed.__name__
        assert typed.__required_keys__ == set(schema["required"]), typed.__name__


def test_readme_metric_table_is_rendered_from_the_metrics_table():
    from bench.metrics import definitions_markdown

    assert definitions_markdown() in (REPO / "README.md").read_text()


def test_one_number_format_for_every_metric():
    from bench.metrics import MAIN_METRIC, METRICS, format_interval, format_number, format_value, spec

    assert METRICS[0] == MAIN_METRIC == "consensus_recall" and len(set(METRICS)) == len(METRICS) == 11
    assert [format_value(m, v) for m, v in (("consensus_recall", 0.56664), ("length_words", 47.2222),
                                            ("compression", 0.58704), ("rouge1", None))] == [
        "0.5666", "47.2", "0.587", "n/a"]
    assert format_interval(-0.65, -0.29, signed=True) == "[-0.650, -0.290]" and format_number(0.5, 3) == "0.500"
    assert [spec(m).direction for m in ("consensus_recall", "unsupported_rate", "length_words")] == [1, -1, 0]


def test_markdown_and_html_show_the_same_numbers(demo_run):
    """One formatter: every value of the Markdown table is in the HTML leaderboard too, as the same string."""
    out, board = demo_run
    md = (out / "leaderboard.md").read_text()
    page = (out / "report.html").read_text()
    table = page.split('<table id="leaderboard"', 1)[1].split("</table>", 1)[0]
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]  # the header row left out
    cells = [c.strip() for line in rows for c in line.strip("|").split("|")]
    values = [c.split(" [")[0] for c in cells if c[:1].isdigit() and "." in c and "/" not in c]
    assert values and all(f">{v}<" in table for v in values)


def test_the_first_kept_article_is_open_and_only_it(demo_run):
    out, _ = demo_run
    page = (out / "report.html").read_text()
    drills = page.split('<details class="article-drill"')[1:]
    assert sum(d.split(">", 1)[0].endswith(" open") for d in drills) == 1
    first_kept = next(d for d in drills if 'class="fail">dropped:' not in d.split("</summary>", 1)[0])
    assert first_kept.split(">", 1)[0].endswith(" open")


def test_the_drill_down_shows_the_first_clusters_and_says_so(demo_run, tmp_path):
    """`html_clusters` / `bench report --clusters N`: per-article detail for the first N clusters by id; the
    page says how many it shows; the leaderboard is whole."""
    from bench.reporting.html import render

    out, board = demo_run
    ids = sorted({r["cluster_id"] for r in read_records(out, "articles")})
    assert len(ids) == 2
    page = render(out, max_clusters=1)
    assert page.count('<section class="cluster">') == 1 and f"<h3>{ids[0]} " in page and f"<h3>{ids[1]} " not in page
    assert "Per-article detail for the first 1 of 2 clusters" in page
    whole = render(out)
    assert whole.count('<section class="cluster">') == 2 and "Per-article detail for the first" not in whole
    proc = run_cli("report", str(out), "--clusters", "1", "--out", str(tmp_path / "one.html"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "one.html").read_text().count('<section class="cluster">') == 1
    proc = run_cli("report", str(out), "--clusters", "0")
    assert proc.returncode == 2 and "a positive whole number or 'all'" in proc.stderr


def test_records_of_some_clusters_are_read_without_parsing_the_others(tmp_path):
    rows = [{"cluster_id": 'a"b\\c', "x": 1}, {"cluster_id": "é/ü", "x": 2}, {"summarizer": "s", "cluster_id": "z"},
            {"cluster_id": "a", "x": 4}]
    (tmp_path / "scores.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (tmp_path / "summaries.jsonl").write_text('{"cluster_id": "a"}\n{"cluster_id": "b", not json\n')
    assert read_records(tmp_path, "scores", {'a"b\\c', "é/ü"}) == rows[:2]
    assert read_records(tmp_path, "scores", set()) == []
    assert read_records(tmp_path, "summaries", {"a"}) == [{"cluster_id": "a"}]  # the bad line is another cluster's
    with pytest.raises(BenchError, match="malformed JSON"):
        read_records(tmp_path, "summaries")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = demo_subset_clusters(root / "hostile.jsonl", extra_text=f" Officials said so. {PWN_SCRIPT} {PWN_IMG}")
    proc = run_cli("dataset=jsonl", f"dataset.path={data}", "summarizer=[lead3,textrank]", f"results_dir={root / 'r'}")
    assert proc.returncode == 0, proc.stderr
    return run_dir(root / "r")


def test_html_escapes_untrusted_text(hostile_run):
    page = (hostile_run / "report.html").read_text()
    assert "data-pwned" in page  # the planted text is shown ...
    assert PWN_SCRIPT not in page and "<img src=x" not in page  # ... but never as markup
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-pwned&#x27;" in page
    assert page.count("<script>") == 1  # only the report's own sorting code
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("BENCH_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required (BENCH_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


def _chromium_run(*args, timeout=90):
    return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           *args], capture_output=True, text=True, timeout=timeout)


def test_html_renders_in_headless_chromium_and_nothing_planted_runs(hostile_run, tmp_path):
    url = (hostile_run / "report.html").as_uri()
    dom = _chromium_run("--virtual-time-budget=3000", "--dump-dom", url).stdout
    assert 'data-report-ready="1"' in dom  # the report's own script ran
    assert "data-pwned=" not in dom.split("<body", 1)[1].split(">", 1)[0]  # the planted ones did not
    assert '<table id="leaderboard"' in dom and '<svg id="chart"' in dom and "article-drill" in dom
    shot = tmp_path / "report.png"
    _chromium_run("--window-size=1400,1600", f"--screenshot={shot}", url)
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_merged_files_copy_the_chosen_runs_lines(tmp_path):
    """A merge writes each chosen summarizer's summaries and scores as lines copied from the runs they came
    from (file order for summaries, `score_rows` order for scores); a line spelled another way is parsed."""
    from bench.reporting.records import write_merged

    def line(rec, compact=False):
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":") if compact else None) + "\n"

    old, new = tmp_path / "old", tmp_path / "new"
    recs = {}
    for run, names in ((old, ("x", "y")), (new, ("y",))):
        run.mkdir()
        recs[run] = [{"summarizer": n, "cluster_id": f"c{i}", "article_id": f"a{i}", "status": "ok",
                      "metrics": {"m": i / 7}, "from": run.name} for i in range(3) for n in names]
        (run / "scores.jsonl").write_text("".join(line(r, compact=i == 1) for i, r in enumerate(recs[run])))
        (run / "summaries.jsonl").write_text("".join(line({**r, "text": 'says "summarizer": "y"'}) for r in recs[run]))
    board = {"rows": [{"summarizer": "x", "run": str(old)}, {"summarizer": "y", "run": str(new)}]}
    chosen_rows = [r for r in recs[old] if r["summarizer"] == "x"] + recs[new]
    write_merged(board, chosen_rows, [old, new], tmp_path / "m", "md")
    scores = (tmp_path / "m" / "scores.jsonl").read_text().splitlines(keepends=True)
    assert [json.loads(s) for s in scores] == chosen_rows
    assert scores[0] == (old / "scores.jsonl").read_text().splitlines(keepends=True)[0]
    summaries = [json.loads(s) for s in (tmp_path / "m" / "summaries.jsonl").read_text().splitlines()]
    assert [(s["from"], s["summarizer"]) for s in summaries] == [("old", "x")] * 3 + [("new", "y")] * 3

    changed = [dict(r, status="failed") for r in chosen_rows]  # rows that no run's lines hold: encoded afresh
    reordered = [chosen_rows[0], chosen_rows[2], chosen_rows[1], *chosen_rows[3:]]  # first and last lines still agree
    for rows, out in ((changed, "m2"), (reordered, "m3")):
        write_merged(board, rows, [old, new], tmp_path / out, "md")
        assert [json.loads(s) for s in (tmp_path / out / "scores.jsonl").read_text().splitlines()] == rows

    with open(new / "summaries.jsonl", "a") as fh:  # a truncated line is parsed, and refused
        fh.write('{"summarizer": "y", "cluster_id": "c9", "text": "cut o\n')
    with pytest.raises(BenchError, match=r"summaries.jsonl:4: not a record"):
        write_merged(board, chosen_rows, [old, new], tmp_path / "m4", "md")
