"""`bench meta-eval DIR`: how well a matcher agrees with human judges, on data in the REALSumm layout.

Files: ids.txt, documents.txt, references.txt (<t> sentence tags allowed), SCUs.txt (tab-separated
units, one line per document), summaries/<system>.summary (one line per document), labels/<system>.label
(tab-separated 0/1 aligned with SCUs.txt).

Settings: `human` scores the human units (SCUs.txt) against each summary; `auto` replaces them with
the harness's own fact extractor applied to references.txt. A matcher with fitted parameters (the
combined matcher) is refitted inside a cross-validation by documents, so every reported number is
held out; other matchers use their configured threshold and nothing is fitted. `params="shipped"`
evaluates a combined matcher with its configured (shipped) parameters as they are, nothing refitted:
the held-out number for data it was not fitted on."""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.matchers.base import Matcher
from bench.matchers.neural import COMBINED_FEATURES, CombinedMatcher
from bench.metrics import format_number
from bench.stages.facts import FactExtractor
from bench.types import BenchError

_TAGS = re.compile(r"</?t>")


@dataclass
class RealSumm:
    ids: list[str]
    documents: list[str]
    references: list[str]
    units: list[list[str]]
    systems: list[str]
    summaries: dict[str, list[str]]
    labels: dict[str, list[list[int]]]


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise BenchError(f"{path} is missing (expected the REALSumm layout; see `bench meta-eval --help`)")
    return path.read_text(encoding="utf-8").splitlines()


def load_realsumm(root: Path) -> RealSumm:
    root = Path(root)
    ids = _lines(root / "ids.txt")
    n = len(ids)
    docs = [_TAGS.sub("", x).strip() for x in _lines(root / "documents.txt")]
    refs = [" ".join(_TAGS.sub("", x).split()) for x in _lines(root / "references.txt")]
    units = [[u.strip() for u in line.split("\t") if u.strip()] for line in _lines(root / "SCUs.txt")]
    for name, rows in (("documents.txt", docs), ("references.txt", refs), ("SCUs.txt", units)):
        if len(rows) != n:
            raise BenchError(f"{root / name} has {len(rows)} lines; ids.txt has {n}")
    systems = sorted(p.stem for p in (root / "summaries").glob("*.summary"))
    if not systems:
        raise BenchError(f"{root / 'summaries'} holds no <system>.summary files")
    summaries, labels = {}, {}
    for s in systems:
        summaries[s] = [" ".join(x.split()) for x in _lines(root / "summaries" / f"{s}.summary")]
        raw = _lines(root / "labels" / f"{s}.label")
        if len(summaries[s]) != n or len(raw) != n:
            raise BenchError(f"system {s}: {len(summaries[s])} summaries and {len(raw)} label lines for {n} documents")
        labels[s] = []
        for i, line in enumerate(raw):
            try:
                row = [int(v) for v in line.split("\t") if v.strip()]
            except ValueError:
                raise BenchError(f"{root / 'labels' / (s + '.label')}:{i + 1}: labels must be 0/1") from None
            if len(row) != len(units[i]) or set(row) - {0, 1}:
                raise BenchError(f"{root / 'labels' / (s + '.label')}:{i + 1}: {len(row)} labels for "
                                 f"{len(units[i])} units (or a value other than 0/1)")
            labels[s].append(row)
    return RealSumm(ids, docs, refs, units, systems, summaries, labels)


# --- statistics ---------------------------------------------------------------------------------------
def correlations(harness: dict[tuple[int, str], float], human: dict[tuple[int, str], float], n_docs: int,
                 systems: list[str]) -> dict[str, Any]:
    """Summary level: per document, across systems, Kendall tau-b and Pearson, averaged over documents
    where neither score is constant (the rest are counted). System level: over the systems' means."""
    from scipy.stats import kendalltau, pearsonr, spearmanr

    kt, pr, skipped = [], [], 0
    for i in range(n_docs):
        h = [human[(i, s)] for s in systems]
        a = [harness[(i, s)] for s in systems]
        if is_constant(h) or is_constant(a):
            skipped += 1
            continue
        kt.append(kendalltau(h, a).statistic)
        pr.append(pearsonr(h, a).statistic)
    hs = [math.fsum(human[(i, s)] for i in range(n_docs)) / n_docs for s in systems]
    ha = [math.fsum(harness[(i, s)] for i in range(n_docs)) / n_docs for s in systems]
    return {"summary_kendall": float(np.mean(kt)) if kt else None, "summary_pearson": float(np.mean(pr)) if pr else None,
            "summary_n_documents": len(kt), "summary_skipped_constant": skipped,
            "system_kendall": float(kendalltau(hs, ha).statistic), "system_pearson": float(pearsonr(hs, ha).statistic),
            "system_spearman": float(spearmanr(hs, ha).statistic)}


def is_constant(values) -> bool:
    """Exactly constant: all values equal. (`np.std(x) == 0` misses equal floats, whose std can be 5.6e-17.)"""
    return float(np.ptp(np.asarray(values, dtype=float))) == 0.0


def unit_metrics(y: np.ndarray, scores: np.ndarray, decisions: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    return {"accuracy": float(np.mean(decisions == y)), "f1": float(f1_score(y, decisions)),
            "roc_auc": float(roc_auc_score(y, scores)), "n_units": int(len(y)), "positive_rate": float(np.mean(y))}


# --- fitting the combined matcher ----------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> dict[str, Any]:
    """Standardised logistic regression; returned as the combined matcher's parameters."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return {"coefficients": dict(zip(COMBINED_FEATURES, map(float, lr.coef_[0]))), "intercept": float(lr.intercept_[0]),
            "means": dict(zip(COMBINED_FEATURES, map(float, mean))), "scales": dict(zip(COMBINED_FEATURES, map(float, scale)))}


def _with_params(m: CombinedMatcher, params: dict[str, Any]) -> CombinedMatcher:
    clone = CombinedMatcher(**params, support_threshold=m.support_threshold, align_threshold=m.align_threshold,
                            model=m.model_id)
    clone.encoder = m.encoder  # share the embeddings already computed
    return clone


def doc_folds(n_docs: int, folds: int) -> list[np.ndarray]:
    """Documents split into `folds` contiguous-by-index groups (deterministic; no fitting on held-out docs)."""
    if folds < 2 or folds > n_docs:
        raise BenchError(f"folds must be between 2 and the number of documents ({n_docs}), not {folds}")
    return [np.arange(n_docs)[f::folds] for f in range(folds)]


# --- the evaluation -------------------------------------------------------------------------------------
def unit_pairs(data: RealSumm, units: list[list[str]]) -> tuple[list[tuple[str, str]], list[tuple[int, str, int]]]:
    """Every (summary, unit) pair to judge, in document, system, unit order, with its (document, system,
    unit) key."""
    pairs, keys = [], []
    for i in range(len(data.ids)):
        for s in data.systems:
            for j, u in enumerate(units[i]):
                pairs.append((data.summaries[s][i], u))
                keys.append((i, s, j))
    return pairs, keys


def _scores(matcher: Matcher, pairs, keys, n_docs: int, folds: int, y: np.ndarray | None,
            fold_params: list[dict[str, Any]] | None, params: str = "refit"):
    """Scores and decisions. A combined matcher is refitted per fold on the other documents' human labels
    (given by y, or reused from fold_params); its held-out probabilities are returned. With
    params="shipped" it is used as configured, like every other matcher."""
    if not isinstance(matcher, CombinedMatcher) or params == "shipped":
        scores = np.array(matcher.support(pairs))
        return scores, scores >= matcher.support_threshold, None
    x = matcher.featurize(pairs)
    doc_of = np.array([k[0] for k in keys])
    scores = np.zeros(len(pairs))
    params_out = []
    for f, held in enumerate(doc_folds(n_docs, folds)):
        test = np.isin(doc_of, held)
        if fold_params is None:
            assert y is not None
            params = fit_logistic(x[~test], y[~test])
        else:
            params = fold_params[f]
        params_out.append(params)
        scores[test] = _with_params(matcher, params).probabilities(x[test])
    return scores, scores >= matcher.support_threshold, params_out


def _pyramid(keys, values, n_docs: int, systems: list[str]) -> dict[tuple[int, str], float]:
    sums: dict[tuple[int, str], list[float]] = {(i, s): [] for i in range(n_docs) for s in systems}
    for (i, s, _), v in zip(keys, values):
        sums[(i, s)].append(float(v))
    return {k: (math.fsum(v) / len(v) if v else 0.0) for k, v in sums.items()}


def rouge_recall_baselines(data: RealSumm, human: dict[tuple[int, str], float]) -> dict[str, Any]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=True)
    r1, r2 = {}, {}
    for i, ref in enumerate(data.references):
        for s in data.systems:
            sc = scorer.score(ref, data.summaries[s][i])
            r1[(i, s)], r2[(i, s)] = sc["rouge1"].recall, sc["rouge2"].recall
    n = len(data.ids)
    return {"rouge1_recall": correlations(r1, human, n, data.systems),
            "rouge2_recall": correlations(r2, human, n, data.systems)}


PARAMS = ("refit", "shipped")


def meta_evaluate(root: Path, matcher: Matcher, extractor: FactExtractor | None, settings=("human", "auto"),
                  folds: int = 5, params: str = "refit") -> dict[str, Any]:
    if params not in PARAMS:
        raise BenchError(f"params must be one of {', '.join(PARAMS)}, not {params!r}")
    started = time.perf_counter()
    refit = isinstance(matcher, CombinedMatcher) and params == "refit"
    data = load_realsumm(root)
    n = len(data.ids)
    human_pairs, human_keys = unit_pairs(data, data.units)
    y = np.array([data.labels[s][i][j] for i, s, j in human_keys])
    human_pyramid = _pyramid(human_keys, y, n, data.systems)
    out: dict[str, Any] = {
        "data": {"path": str(root), "documents": n, "systems": len(data.systems), "human_units": int(sum(map(len, data.units))),
                 "labels": int(len(y))},
        "matcher": {"name": matcher.name, "identity": matcher.identity()},
        "protocol": (f"{folds}-fold cross-validation by documents (document i in fold i mod {folds}); "
                     "the combined matcher is refitted on the other folds' human labels, other matchers fit nothing")
        if refit else "no fitting: the matcher's configured (shipped) parameters and support_threshold",
        "params": params, "folds": folds, "settings": {},
    }
    t0 = time.perf_counter()
    scores, decisions, fold_params = _scores(matcher, human_pairs, human_keys, n, folds, y, None, params)
    if "human" in settings:
        out["settings"]["human"] = {
            "unit": unit_metrics(y, scores, decisions),
            **correlations(_pyramid(human_keys, decisions, n, data.systems), human_pyramid, n, data.systems),
            "seconds": round(time.perf_counter() - t0, 2)}
    if "auto" in settings:
        if extractor is None:
            raise BenchError("the auto-units setting needs a fact extractor")
        t0 = time.perf_counter()
        parsed = extractor.extract([(f"reference{i}", ref) for i, ref in enumerate(data.references)])
        auto_units = [[f.text for f in p.facts] for p in parsed]
        pairs, keys = unit_pairs(data, auto_units)
        _, auto_decisions, _ = _scores(matcher, pairs, keys, n, folds, None, fold_params, params)
        out["settings"]["auto"] = {
            "auto_units": int(sum(map(len, auto_units))),
            **correlations(_pyramid(keys, auto_decisions, n, data.systems), human_pyramid, n, data.systems),
            "seconds": round(time.perf_counter() - t0, 2)}
    out["baselines"] = rouge_recall_baselines(data, human_pyramid)
    out["runtime_seconds"] = round(time.perf_counter() - started, 2)
    return out


def to_markdown(result: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return format_number(x, 3)

    lines = [f"## bench meta-eval: matcher `{result['matcher']['name']}` on {result['data']['path']}", "",
             f"{result['data']['documents']} documents × {result['data']['systems']} systems, "
             f"{result['data']['labels']} human labels. Protocol: {result['protocol']}.", "",
             "| setting | unit acc. | unit F1 | unit AUC | summary Kendall | summary Pearson | system Kendall | "
             "system Pearson | system Spearman |", "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["settings"].items():
        u = r.get("unit", {})
        lines.append(f"| {name} units | {f(u.get('accuracy'))} | {f(u.get('f1'))} | {f(u.get('roc_auc'))} | "
                     f"{f(r['summary_kendall'])} | {f(r['summary_pearson'])} | {f(r['system_kendall'])} | "
                     f"{f(r['system_pearson'])} | {f(r['system_spearman'])} |")
    for name, r in result["baselines"].items():
        lines.append(f"| {name} (baseline) | | | | {f(r['summary_kendall'])} | {f(r['summary_pearson'])} | "
                     f"{f(r['system_kendall'])} | {f(r['system_pearson'])} | {f(r['system_spearman'])} |")
    lines += ["", "Targets for a matcher to trust: human units: unit accuracy ≥ 0.85, system Kendall ≥ 0.85, system Pearson ≥ 0.95, "
              "summary Kendall ≥ 0.50; automatic units: system Kendall ≥ 0.80, Pearson ≥ 0.92, summary Kendall ≥ 0.45.",
              f"Runtime: {result['runtime_seconds']} s."]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out: Path | None) -> str:
    md = to_markdown(result)
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(md)
    return md
