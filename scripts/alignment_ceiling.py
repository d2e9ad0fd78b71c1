"""How far can the signals available offline go on alignment? Held-out precision and recall on the labelled
fact pairs (scripts/alignment_labels.jsonl) of decisions learned from every cheap signal we have:

    python scripts/alignment_ceiling.py [--data ../shared/data/multinews-dev] [--repeats 5]

Signals per pair: the lexical alignment score (`segments`) and similarity (`max`), the MiniLM alignment score,
and the combined matcher's ten features in both directions (their min and max): lexical and bigram recall,
number and entity agreement, MiniLM similarity of the best segment and of the whole, MiniLM soft token
recall, negation mismatch, length. Every decision is multiplied by the `same_event` vetoes, as alignment is.

Protocol: 5-fold cross-validation, repeated with `--repeats` seeds. In each fold the model is fitted on four
folds; its threshold is the lowest score at which the four folds' own cross-fitted scores (an inner 5-fold
split, so the threshold is never chosen on fitted data) reach precision >= --target; precision and recall
are measured on the fifth fold. Nothing here changes what a run does."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from scripts.alignment_labels import load_pairs


def _threshold(scores: np.ndarray, y: np.ndarray, target: float) -> float:
    ok = [t for t in np.unique(scores) if (scores >= t).sum() >= 5 and y[scores >= t].mean() >= target]
    return min(ok) if ok else np.inf


def _fit_predict(make, x_train, y_train, x_test):
    model = make().fit(x_train, y_train)
    return model.predict_proba(x_test)[:, 1]


def _learned(make, x: np.ndarray, y: np.ndarray, veto: np.ndarray):
    def scores(train: np.ndarray, test: np.ndarray):
        idx = np.where(train)[0]
        inner = np.arange(len(idx)) % 5
        s_train = np.zeros(len(idx))
        for j in range(5):
            s_train[inner == j] = _fit_predict(make, x[idx[inner != j]], y[idx[inner != j]], x[idx[inner == j]])
        s_test = _fit_predict(make, x[train], y[train], x[test])
        return s_train * veto[train], s_test * veto[test]
    return scores


def _cross_validated(scores, y: np.ndarray, target: float, repeats: int) -> dict[str, float]:
    precision, recall = [], []
    for seed in range(repeats):
        folds = np.random.default_rng(seed).permutation(len(y)) % 5
        predicted = np.zeros(len(y), bool)
        for k in range(5):
            s_train, s_test = scores(folds != k, folds == k)
            predicted[folds == k] = s_test >= _threshold(s_train, y[folds != k], target)
        tp = int((predicted & (y == 1)).sum())
        precision.append(tp / max(int(predicted.sum()), 1))
        recall.append(tp / int(y.sum()))
    return {"precision": round(float(np.mean(precision)), 3), "recall": round(float(np.mean(recall)), 3)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=Path(__file__).with_name("alignment_labels.jsonl"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data/multinews-dev"))
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    from hydra.utils import instantiate
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from bench.cli import compose
    from bench.matchers.base import same_event

    pairs, labels = load_pairs(args.labels, args.data)
    y = np.array(labels)
    matcher = {name: instantiate(compose([f"matcher={name}"]).matcher) for name in ("lexical", "embedding", "combined")}
    lexical_segments = np.array(matcher["lexical"].alignment_scores(pairs))
    lexical_max = np.array(matcher["lexical"].similarity(pairs))
    minilm = np.array(matcher["embedding"].alignment_scores(pairs))
    forward = matcher["combined"].featurize(pairs)
    backward = matcher["combined"].featurize([(b, a) for a, b in pairs])
    x = np.column_stack([lexical_segments, lexical_max, minilm, np.minimum(forward, backward),
                         np.maximum(forward, backward)])
    veto = np.array([same_event(a, b) for a, b in pairs], dtype=float)

    def rule(score: np.ndarray):
        return lambda train, test: (score[train] * veto[train], score[test] * veto[test])

    def logistic(columns):
        def make():
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return _learned(make, x[:, columns], y, veto)

    decisions = {
        "lexical segments (the shipped rule)": rule(lexical_segments),
        "MiniLM segments": rule(minilm),
        "logistic regression: lexical segments + max": logistic([0, 1]),
        "logistic regression: lexical + MiniLM segments": logistic([0, 1, 2]),
        "logistic regression: all 23 signals": logistic(list(range(x.shape[1]))),
    }
    out = {"pairs": len(y), "positives": int(y.sum()), "target_precision": args.target, "repeats": args.repeats,
           "held_out": {name: _cross_validated(s, y, args.target, args.repeats) for name, s in decisions.items()}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
