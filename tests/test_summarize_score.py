import math

import pytest
from rouge_score import rouge_scorer

from bench.matchers.lexical import LexicalMatcher
from bench.stages.score import METRICS, Scorer
from bench.summarizers.extractive import LeadK, RandomK, TextRank
from bench.text.rouge import Rouge
from tests.conftest import read_jsonl


def _mean_recall(rows, name):
    values = [r["metrics"]["consensus_recall"] for r in rows if r["summarizer"] == name
              and r["status"] == "ok" and r["metrics"]["consensus_recall"] is not None]
    assert values, name
    return sum(values) / len(values)


def test_oracle_beats_lead_beats_random(demo_run):
    out, _ = demo_run
    rows = read_jsonl(out / "scores.jsonl")
    oracle, lead, rand = (_mean_recall(rows, n) for n in ("oracle", "lead3", "random3"))
    assert oracle >= lead >= rand
    assert oracle > rand


def test_leaderboard_means_are_exact_means_of_scores(demo_run):
    out, board = demo_run
    rows = read_jsonl(out / "scores.jsonl")
    for row in board["rows"]:
        for m in METRICS:
            values = [r["metrics"][m] for r in rows if r["summarizer"] == row["summarizer"]
                      and r["status"] == "ok" and r["metrics"][m] is not None]
            assert row["n_defined"][m] == len(values)
            assert row["means"][m] == (math.fsum(values) / len(values) if values else None)


def test_rouge_equals_rouge_score():
    ref = ["The bridge collapsed on Tuesday.", "Twelve people were injured."]
    summ = ["A bridge collapsed Tuesday morning.", "Twelve were hurt in the collapse."]
    ours = Scorer(LexicalMatcher()).rouge(ref, summ)
    theirs = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True).score(
        "\n".join(ref), "\n".join(summ))
    assert ours == {k: theirs[k].fmeasure for k in ("rouge1", "rouge2", "rougeLsum")}


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_rouge_equals_rouge_score_on_many_texts(use_stemmer):
    """bench.text.rouge's memoised tokens and LCS give rouge-score's scores exactly (==, not approx):
    repeated words (the union-LCS hit counting), lines that are empty or hold a newline, pairs with no
    common token, punctuation-only text, and the same scorer reused so that its caches are hit."""
    import random

    rng = random.Random(7)
    words = "the a bridge collapsed bridges collapsing on tuesday twelve people were injured hurt 12 2,400 " \
            "police said it's U.S. officials say say said “quote” -- ... running runs ran".split()
    sentence = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(0, 14)))  # noqa: E731
    ours = Rouge(use_stemmer=use_stemmer)
    theirs = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=use_stemmer)
    cases = [([sentence() for _ in range(rng.randint(0, 6))], [sentence() for _ in range(rng.randint(0, 4))])
             for _ in range(300)]
    cases += [(["One line.\nTwo lines.", ""], ["two LINES one"]), (["..."], ["!!"]), ([], ["a"]), (["a"], [])]
    cases += cases[:50]  # again, through warm caches
    for ref, summ in cases:
        expected = theirs.score("\n".join(ref), "\n".join(summ))
        assert ours.score(ref, summ) == {k: expected[k].fmeasure for k in ("rouge1", "rouge2", "rougeLsum")}


def test_rouge_in_run_matches_rouge_score_on_written_strings(demo_run):
    out, _ = demo_run
    units = {u["unit_id"]: u for u in read_jsonl(out / "consensus.jsonl")}
    summaries = {(s["summarizer"], s["article_id"]): s for s in read_jsonl(out / "summaries.jsonl")}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    checked = 0
    for row in read_jsonl(out / "scores.jsonl"):
        if row["status"] != "ok" or row["metrics"]["rouge1"] is None:
            continue
        ref = [u["text"] for u in units.values() if row["article_id"] in u["reference_for"]
               and u["cluster_id"] == row["cluster_id"]]
        s = summaries[(row["summarizer"], row["article_id"])]
        expected = scorer.score("\n".join(ref), "\n".join(s["meta"]["sentences"]))
        assert row["metrics"]["rouge2"] == pytest.approx(expected["rouge2"].fmeasure, abs=0)
        assert row["metrics"]["rougeLsum"] == pytest.approx(expected["rougeLsum"].fmeasure, abs=0)
        checked += 1
    assert checked >= 9


def test_baselines_are_deterministic(demo_docs):
    docs_by_cluster, _ = demo_docs
    docs = [d for ds, _ in docs_by_cluster.values() for d in ds]
    for s in (LeadK(k=3), RandomK(k=3, seed=1), TextRank(k=3)):
        a, b = s.summarize(docs), s.summarize(docs)
        assert [x.text for x in a] == [x.text for x in b]
        assert all(len(x.meta["sentence_indices"]) == min(3, len(d.sentences)) for x, d in zip(a, docs))
    assert [x.text for x in RandomK(seed=1).summarize(docs)] != [x.text for x in RandomK(seed=2).summarize(docs)]


def test_undefined_metrics_stay_none_not_zero(demo_docs):
    from bench.stages.score import ScoredInput
    from bench.types import Summary

    docs_by_cluster, matcher = demo_docs
    docs, consensus = docs_by_cluster["port-alder-bridge"]
    doc = docs[0]
    empty = ScoredInput(Summary(doc.cluster_id, doc.id, "x", " "), doc, [], [])
    scores = Scorer(matcher).score(empty, consensus, docs)["metrics"]
    assert scores["consensus_precision"] is None and scores["unsupported_rate"] is None and scores["rouge1"] is None


def test_the_oracle_reads_the_reference_and_says_so_without_it(demo_docs):
    from bench.summarizers.oracle import Oracle
    from bench.types import BenchError

    docs_by_cluster, matcher = demo_docs
    docs, consensus = docs_by_cluster["port-alder-bridge"]
    oracle = Oracle(matcher)
    assert oracle.needs_references
    with pytest.raises(BenchError, match="reads the consensus reference"):
        oracle.summarize(docs)
    assert all(s.ok for s in oracle.summarize(docs, [consensus.reference(d.id) for d in docs]))


def test_summary_keys_hold_every_setting_that_changes_a_summary(demo_docs):
    """A summarizer's key holds its whole config node: the oracle's holds the run's matcher (an NLI matcher's
    max_length changes its summaries), textrank's its tolerance; the reference only where it is read."""
    from bench.cache import Cache
    from bench.runner.parts import build_stages
    from tests.conftest import compose_cfg

    def summarizers(*overrides):
        cfg = compose_cfg("summarizer=[lead3,textrank,oracle]", "matcher=nli", *overrides)
        return {s.name: s for s in build_stages(cfg, Cache(None)).summarizers}

    base, other = summarizers(), summarizers("matcher.max_length=256", "+summarizer.textrank.tolerance=0.001")
    assert base["oracle"].identity != other["oracle"].identity
    assert base["textrank"].identity != other["textrank"].identity
    assert base["lead3"].identity == other["lead3"].identity
    docs, consensus = demo_docs[0]["port-alder-bridge"]
    reference = consensus.reference(docs[0].id)
    assert base["lead3"].summary_key(docs[0], reference) == base["lead3"].summary_key(docs[0], [])
    assert base["oracle"].summary_key(docs[0], reference) != base["oracle"].summary_key(docs[0], [])


def test_a_summary_key_covers_the_summarizers_code_and_no_other():
    """Summaries are keyed by the code that makes them: the summarizer's modules and what they import from
    bench, not the reporting or scoring code (model summaries outlive edits there)."""
    from bench.cache import source_hash, source_modules
    from bench.matchers.lexical import LexicalMatcher
    from bench.summarizers.extractive import LeadK
    from bench.summarizers.oracle import Oracle

    assert source_modules(LeadK()) == {"bench.summarizers.extractive", "bench.stages.summarize", "bench.text.words",
                                       "bench.types"}
    assert {"bench.matchers.lexical", "bench.matchers.base"} <= source_modules(Oracle(LexicalMatcher()))
    assert source_hash(LeadK()) == source_hash(LeadK(k=5)) != source_hash(Oracle(LexicalMatcher()))
