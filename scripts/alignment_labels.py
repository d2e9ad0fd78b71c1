"""Labelled fact pairs for measuring alignment, stored as locators into the shared data (no text copied).

    python scripts/alignment_labels.py evaluate [--labels scripts/alignment_labels.jsonl] [--data ../shared/data/multinews-dev]
    python scripts/alignment_labels.py locate CANDIDATES LABELS --data DIR --out FILE   (how the file was made)

Each labelled pair names two facts by their article and the character spans of their words in the raw
article text of `clusters.jsonl`; `evaluate` rebuilds the two texts, asks the configured matcher whether
they align (`Matcher.aligned`, the decision consensus uses), and prints precision and recall, plus a
5-fold cross-validated choice of `align_threshold` (chosen on four folds at precision >= --target, measured
on the fifth)."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def locate(fact: str, raw: str) -> list[list[int]]:
    """Character spans of `raw` whose words, joined by spaces, spell `fact` (greedy longest runs)."""
    fw, rw = [w for w, _, _ in _words(fact)], _words(raw)
    spans, i = [], 0
    while i < len(fw):
        best = (0, -1)
        for p in range(len(rw)):
            k = 0
            while i + k < len(fw) and p + k < len(rw) and rw[p + k][0] == fw[i + k]:
                k += 1
            if k > best[0]:
                best = (k, p)
        if best[0] == 0:
            raise ValueError(f"word {fw[i]!r} of the fact is not in the article")
        k, p = best
        spans.append([rw[p][1], rw[p + k - 1][2]])
        i += k
    return spans


def rebuild(spans: list[list[int]], raw: str) -> str:
    return " ".join(raw[s:e] for s, e in spans)


def _articles(data: Path) -> dict[tuple[str, str], str]:
    rows = (json.loads(line) for line in (data / "clusters.jsonl").open())
    return {(r["cluster_id"], r["article_id"]): r["text"] for r in rows}


def _locate_command(args) -> None:
    raw = _articles(args.data)
    labels = {json.loads(line)["pair"]: json.loads(line) for line in open(args.labels)}
    with open(args.out, "w") as out:
        for line in open(args.candidates):
            c = json.loads(line)
            rec = {"pair": c["pair"], "cluster_id": c["cluster_id"]}
            for side in ("a", "b"):
                text = raw[(c["cluster_id"], c[f"article_{side}"])]
                spans = locate(c[f"fact_{side}"], text)
                rec[f"article_{side}"] = c[f"article_{side}"]
                rec[f"spans_{side}"] = spans
                rec[f"sha1_{side}"] = hashlib.sha1(rebuild(spans, text).encode()).hexdigest()[:12]
            rec["label"] = labels[c["pair"]]["label"]
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")


def load_pairs(labels: Path, data: Path) -> tuple[list[tuple[str, str]], list[int]]:
    if not (data / "clusters.jsonl").is_file():
        raise SystemExit(f"alignment_labels: {data}/clusters.jsonl not found (the labels point into it)")
    return labelled_texts(labels, data, ("a", "b"))


def labelled_texts(labels: Path, data: Path, sides: tuple[str, str]) -> tuple[list[tuple[str, str]], list[int]]:
    """Each labelled record's two texts, rebuilt from `spans_<side>` in its article and checked against
    `sha1_<side>`, and its label."""
    raw = _articles(data)
    pairs, y = [], []
    for line in labels.open():
        r = json.loads(line)
        texts = []
        for side in sides:
            text = rebuild(r[f"spans_{side}"], raw[(r["cluster_id"], r[f"article_{side}"])])
            if hashlib.sha1(text.encode()).hexdigest()[:12] != r[f"sha1_{side}"]:
                raise SystemExit(f"{labels.name}: pair {r['pair']}: the data differs from the labelled version")
            texts.append(text)
        pairs.append((texts[0], texts[1]))
        y.append(int(r["label"]))
    return pairs, y


def precision_recall(pred: list[bool], y: list[int]) -> tuple[float | None, float | None, int]:
    tp = sum(1 for p, t in zip(pred, y) if p and t)
    n_pred, n_pos = int(sum(pred)), int(sum(y))
    return (tp / n_pred if n_pred else None), (tp / n_pos if n_pos else None), n_pred


def _evaluate_command(args) -> None:
    import numpy as np

    from bench.cli import compose
    from hydra.utils import instantiate

    pairs, y = load_pairs(args.labels, args.data)
    matcher = instantiate(compose([f"matcher={args.matcher}", *args.overrides]).matcher)
    scores = np.array(matcher.alignment_scores(pairs))
    y_arr = np.array(y)
    p, r, n = precision_recall(list(scores >= matcher.align_threshold), y)
    out = {"pairs": len(y), "positives": int(sum(y)), "matcher": args.matcher, "overrides": args.overrides,
           "shipped": {"align_threshold": matcher.align_threshold, "precision": p, "recall": r, "predicted": n}}
    grid = np.round(np.arange(0.30, 0.951, 0.025), 3)
    rng = np.random.default_rng(0)
    folds = rng.permutation(len(y)) % 5
    held_pred, chosen = np.zeros(len(y), bool), []
    for k in range(5):
        train = folds != k
        ok = [t for t in grid if (scores[train] >= t).sum()
              and y_arr[train][scores[train] >= t].mean() >= args.target]
        t = min(ok) if ok else grid[-1]
        chosen.append(float(t))
        held_pred[~train] = scores[~train] >= t
    p, r, n = precision_recall(list(held_pred), y)
    out["cross_validated"] = {"target_precision": args.target, "thresholds": chosen, "precision": p, "recall": r,
                              "predicted": n}
    print(json.dumps(out, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate")
    ev.add_argument("--labels", type=Path, default=Path(__file__).with_name("alignment_labels.jsonl"))
    ev.add_argument("--data", type=Path, default=Path("../shared/data/multinews-dev"))
    ev.add_argument("--matcher", default="lexical")
    ev.add_argument("--target", type=float, default=0.9)
    ev.add_argument("overrides", nargs="*", help="config overrides, e.g. matcher.alignment=mean")
    lo = sub.add_parser("locate")
    lo.add_argument("candidates", type=Path)
    lo.add_argument("labels", type=Path)
    lo.add_argument("--data", type=Path, required=True)
    lo.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    (_evaluate_command if args.command == "evaluate" else _locate_command)(args)


if __name__ == "__main__":
    sys.exit(main())
