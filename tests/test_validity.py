"""`bench validity`: system-level and per-cluster correlations between consensus recall and ROUGE against the
human summary, on a synthetic run directory with hand-computed answers, and end to end on the demo data."""
import json
import math
import random

import pytest
from scipy.stats import kendalltau, pearsonr

from bench.cli import main
from bench.stages.data import FolderDataset
from bench.reporting.validity import kendall_tau_b, pearson, validity
from tests.conftest import read_jsonl, run_cli

# consensus recall (cr) and human ROUGE-2 (h2) per (summarizer, cluster, article); None: undefined
SYNTHETIC = {
    ("A", "c1", "a1"): (0.5, 0.2), ("A", "c1", "a2"): (0.7, 0.2), ("A", "c2", "a3"): (0.2, 0.1),
    ("B", "c1", "a1"): (0.3, 0.1), ("B", "c1", "a2"): (0.3, 0.3), ("B", "c2", "a3"): (0.2, 0.3),
    ("C", "c1", "a1"): (0.1, 0.0), ("C", "c1", "a2"): (0.1, 0.1), ("C", "c2", "a3"): (0.2, 0.2),
    # a4: C's recall is undefined, so a4 is left out for every summarizer (it would change every answer)
    ("A", "c2", "a4"): (0.0, 0.9), ("B", "c2", "a4"): (0.9, 0.0), ("C", "c2", "a4"): (None, 0.5),
}


def _rows():
    rows = [{"summarizer": s, "cluster_id": c, "article_id": a, "status": "ok",
             "metrics": {"consensus_recall": cr, "human_rouge2": h2}} for (s, c, a), (cr, h2) in SYNTHETIC.items()]
    # a5: failed for C, so left out too
    rows += [{"summarizer": s, "cluster_id": "c2", "article_id": "a5", "status": "ok",
              "metrics": {"consensus_recall": 1.0, "human_rouge2": 1.0 if s == "A" else 0.0}} for s in ("A", "B")]
    rows.append({"summarizer": "C", "cluster_id": "c2", "article_id": "a5", "status": "failed", "error": "x",
                 "metrics": None})
    return rows


def _board(summarizers):
    """The smallest leaderboard.json the schema accepts, rows in the given order."""
    settings = {"seed": 0, "resamples": 10, "confidence": 0.95, "alpha": 0.05}
    return {"schema_version": "1.1", "created": "2024-01-01T00:00:00+00:00", "main_metric": "consensus_recall",
            "metrics": ["consensus_recall", "human_rouge2"], "comparisons": [],
            "signature": {"bench_version": "0", "config_hash": "c", "data_hash": "0" * 16, "scorer_hash": "0" * 16,
                          "python": "3", "packages": {}, "git": {"commit": None, "dirty": None},
                          "bootstrap": settings, "signature_string": "s"},
            "statistics": {**settings, "method": "m", "metric_tested": "consensus_recall", "paired_test": "t"},
            "rows": [{"summarizer": s, "identity": {"class": s}, "n_articles": 0, "n_scored": 0, "n_failed": 0,
                      "means": {}, "n_defined": {}, "ci": {}, "vs_next": None} for s in summarizers]}


@pytest.fixture()
def synthetic_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "leaderboard.json").write_text(json.dumps(_board(["A", "B", "C"])))
    (run / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return run


def test_hand_computed_answers():
    r = validity(_rows(), ["A", "B", "C"])
    assert (r["n_articles"], r["n_clusters"], r["n_systems"]) == (3, 2, 3)
    means = {x["summarizer"]: (x["consensus_recall"], x["human_rouge2"]) for x in r["systems"]}
    assert means["A"] == pytest.approx((1.4 / 3, 0.5 / 3)) and means["C"] == pytest.approx((0.4 / 3, 0.3 / 3))
    # system level: x = (7, 4, 2)/15, y = (5, 7, 3)/30: A-B discordant, A-C and B-C concordant
    assert r["system"]["kendall"] == pytest.approx(1 / 3)
    assert r["system"]["pearson"] == pytest.approx(12 / math.sqrt(912))
    # c1: x = (.6, .3, .1), y = (.2, .2, .05): A-B tied in y only -> tau-b = 2 / sqrt(2 * 3)
    # c2: every recall is 0.2 -> constant -> undefined, left out of the mean and counted
    pc = r["per_cluster"]
    assert pc["kendall"] == pytest.approx(2 / math.sqrt(6))
    assert pc["pearson"] == pytest.approx(7 / math.sqrt(76))
    assert (pc["n_defined"], pc["n_undefined"], pc["undefined_clusters"]) == (1, 1, ["c2"])


def test_hand_computed_answers_agree_with_scipy():
    r = validity(_rows(), ["A", "B", "C"])
    x = [s["consensus_recall"] for s in r["systems"]]
    y = [s["human_rouge2"] for s in r["systems"]]
    assert r["system"]["kendall"] == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert r["system"]["pearson"] == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)
    assert r["per_cluster"]["kendall"] == pytest.approx(kendalltau([.6, .3, .1], [.2, .2, .05]).statistic, abs=1e-12)


def test_correlations_match_scipy_with_ties():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(2, 9)
        x = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)]
        y = [rng.choice([0.5, rng.random()]) for _ in range(n)]
        if len(set(x)) == 1 or len(set(y)) == 1:
            assert kendall_tau_b(x, y) is None and pearson(x, y) is None
            continue
        assert kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
        assert pearson(x, y) == pytest.approx(pearsonr(x, y).statistic, abs=1e-9)


def test_constant_is_detected_exactly():
    assert kendall_tau_b([0.3, 0.3, 0.3], [1, 2, 3]) is None and pearson([1, 2, 3], [5, 5, 5]) is None
    # not constant, however close: defined
    assert kendall_tau_b([0.3, 0.3, 0.30000000000000004], [1, 2, 3]) == pytest.approx(math.sqrt(2 / 3))


def test_cli_on_synthetic_run(synthetic_run, tmp_path, capsys):
    out = tmp_path / "v.json"
    main(["validity", str(synthetic_run), "--json", str(out)])
    printed = capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["system"]["kendall"] == pytest.approx(1 / 3) and r["n_articles"] == 3
    assert "| system | 0.3333 |" in printed and "1 undefined" in printed
    main(["validity", str(synthetic_run), "--summarizers", "A,C"])  # two systems: concordant
    assert "| system | 1.0000 | 1.0000 |" in capsys.readouterr().out


def test_cli_errors(synthetic_run, capsys):
    for args, message in ((["--against", "rouge9"], "unknown metric 'rouge9'"),
                          (["--summarizers", "A,Z"], "Z not in the run"),
                          (["--summarizers", "A"], "at least 2 summarizers"),
                          (["--against", "human_rouge1"], "no article has both")):
        with pytest.raises(SystemExit) as e:
            main(["validity", str(synthetic_run), *args])
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_end_to_end_on_demo_with_human_summaries(tmp_path):
    """The demo clusters as JSONL with a human summary for one cluster: the run reports human_rouge* for that
    cluster's articles only (None, never 0, for the other), and `bench validity` reads the run."""
    clusters = FolderDataset().load()
    rows = [{"cluster_id": c.id, "article_id": a.id, "source": a.source, "title": a.title, "text": a.text}
            for c in clusters for a in c.articles]
    (tmp_path / "clusters.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    human = {c.id: " ".join(a.text.split(". ")[0] + "." for a in c.articles[:2]) for c in clusters}
    with_summary = clusters[1].id
    (tmp_path / "summaries.jsonl").write_text(json.dumps({"cluster_id": with_summary,
                                                          "summary": "– " + human[with_summary]}) + "\n")
    res = run_cli("dataset=jsonl", f"dataset.path={tmp_path / 'clusters.jsonl'}",
                  f"dataset.summaries={tmp_path / 'summaries.jsonl'}", "summarizer=[lead1,lead3,random1]",
                  "html=false", f"results_dir={tmp_path / 'runs'}", "run_name=r", "cache.enabled=false")
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "r"
    assert "human R-2" in (run / "leaderboard.md").read_text()
    scores = [r for r in read_jsonl(run / "scores.jsonl") if r["status"] == "ok"]
    assert scores and all((r["metrics"]["human_rouge2"] is None) == (r["cluster_id"] != with_summary)
                          for r in scores)
    # the value is rouge-score's on the written strings: human sentences (as split) vs the summary sentences
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    r = next(r for r in scores if r["cluster_id"] == with_summary and r["summarizer"] == "lead1")
    summary = next(s for s in read_jsonl(run / "summaries.jsonl")
                   if s["article_id"] == r["article_id"] and s["summarizer"] == "lead1")
    expected = scorer.score(human[with_summary], "\n".join(summary["meta"]["sentences"]))
    assert r["metrics"]["human_rouge1"] == expected["rouge1"].fmeasure
    assert r["metrics"]["human_rouge2"] == expected["rouge2"].fmeasure

    # rouge1/rouge2 ignore line breaks, so the raw human text gives rouge-score's value directly
    v = run_cli("validity", str(run), "--json", str(tmp_path / "v.json"))
    assert v.returncode == 0, v.stderr
    result = json.loads((tmp_path / "v.json").read_text())
    defined = {(r["cluster_id"], r["article_id"]) for r in scores if r["metrics"]["consensus_recall"] is not None
               and r["metrics"]["human_rouge2"] is not None}
    assert result["n_systems"] == 3 and result["n_clusters"] == 1
    assert result["n_articles"] == len(defined) > 0
    assert "bench validity: consensus_recall vs human_rouge2" in v.stdout

    # a second run with another summarizer: several runs are merged as `bench leaderboard` merges them
    res = run_cli("dataset=jsonl", f"dataset.path={tmp_path / 'clusters.jsonl'}",
                  f"dataset.summaries={tmp_path / 'summaries.jsonl'}", "summarizer=[textrank1]",
                  "html=false", f"results_dir={tmp_path / 'runs'}", "run_name=r2", "cache.enabled=false")
    assert res.returncode == 0, res.stderr[-3000:]
    v = run_cli("validity", str(run), str(tmp_path / "runs" / "r2"), "--json", str(tmp_path / "v2.json"))
    assert v.returncode == 0, v.stderr
    merged = json.loads((tmp_path / "v2.json").read_text())
    assert merged["n_systems"] == 4 and merged["n_articles"] == result["n_articles"]
    assert {s["summarizer"] for s in merged["systems"]} == {"lead1", "lead3", "random1", "textrank1"}


def test_scorer_human_rouge_equals_rouge_score_and_is_none_without_a_human_summary(demo_docs):
    from rouge_score import rouge_scorer

    from bench.stages.score import Scorer, ScoredInput
    from bench.types import Summary

    docs_by_cluster, matcher = demo_docs
    docs, consensus = docs_by_cluster["port-alder-bridge"]
    doc = docs[0]
    sentences = [s.text for s in doc.sentences[:2]]
    item = ScoredInput(Summary(doc.cluster_id, doc.id, "x", " ".join(sentences)), doc, sentences, list(doc.facts[:2]))
    human = ["The Port Alder bridge was closed.", "Engineers found cracks in the span."]
    got = Scorer(matcher).score(item, consensus, docs, human)["metrics"]
    expected = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True).score(
        "\n".join(human), "\n".join(sentences))
    assert {k: got[f"human_{k}"] for k in ("rouge1", "rouge2", "rougeLsum")} == {
        k: expected[k].fmeasure for k in ("rouge1", "rouge2", "rougeLsum")}
    assert got["human_rouge1"] > 0
    without = Scorer(matcher).score(item, consensus, docs)["metrics"]
    assert without["human_rouge1"] is None and without["human_rouge2"] is None and without["human_rougeLsum"] is None
    assert {k: v for k, v in without.items() if not k.startswith("human_")} == {
        k: v for k, v in got.items() if not k.startswith("human_")}
