"""Labelled witness decisions: does a sentence of one article state a fact of another (independent) article?
Stored as locators into the shared data (no text copied), like `scripts/alignment_labels.py`.

    python scripts/witness_labels.py evaluate [--labels scripts/witness_labels.jsonl] [--data ../shared/data/multinews-dev]
    python scripts/witness_labels.py candidates --out FILE [--data DIR]   (how the sample was drawn: its first 240 lines)

The sample: 240 decisions drawn at random (seed 0) from every (fact, sentence) pair of two independent
articles of a multinews-dev cluster where the sentence's lexical support for the fact is >= 0.6 (2,120
pairs), each labelled 1 when the sentence asserts what the fact asserts (same claim, same actors, no
contradicting number, name or polarity) and 0 otherwise, by two readers (one half each) following one
written guideline; a third reader's labels for 40 pairs agreed on 35 (the 5 differences: the third reader
said 1). `evaluate` rebuilds the texts, scores each pair with the configured matcher, and prints the
precision of `consensus.witness_threshold` / `witness_min_words` and a 5-fold cross-validated choice of the
threshold (the lowest with precision >= --target on four folds, measured on the fifth)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.alignment_labels import labelled_texts, precision_recall  # noqa: E402


def load_pairs(labels: Path, data: Path) -> tuple[list[tuple[str, str]], list[int]]:
    """(sentence, fact) pairs and their labels."""
    if not (data / "clusters.jsonl").is_file():
        raise SystemExit(f"witness_labels: {data}/clusters.jsonl not found (the labels point into it)")
    return labelled_texts(labels, data, ("sentence", "fact"))


def candidates(data: Path, out: Path) -> int:
    """Every (fact, sentence) pair of two independent articles of a cluster where the sentence's lexical
    support for the fact is >= 0.6 (the best sentence per fact and article), shuffled with seed 0."""
    import random

    from bench.cli import compose
    from bench.runner import pipeline
    from bench.runner.caching import open_cache
    from bench.runner.parts import build_stages

    cfg = compose(["dataset=jsonl", f"dataset.path={data / 'clusters.jsonl'}", "summarizer=[lead3]",
                   "cache.enabled=false", "consensus.witness_threshold=null"])
    stages = build_stages(cfg, open_cache(cfg.cache, pipeline.shard_layout(cfg)))

    class _Discard:
        def write(self, *args, **kwargs) -> None: ...

    kept = pipeline._clean(stages.dataset.load(), stages, _Discard(), [])
    matcher, rows = stages.consensus.builder.matcher, []
    for cid, docs in pipeline._documents(kept, stages, []).items():
        consensus = stages.consensus.builder.build(cid, docs)
        for d in docs:
            sentences = [s.text for s in d.sentences]
            for e in docs:
                if e.id == d.id or e.id in consensus._dependent[d.id]:
                    continue
                for f in e.facts:
                    scores = matcher.support([(s, f.text) for s in sentences])
                    best = max(range(len(sentences)), key=scores.__getitem__)
                    if scores[best] >= 0.6:
                        rows.append({"cluster": cid, "fact_article": e.id, "fact": f.text,
                                     "sentence_article": d.id, "sentence": sentences[best],
                                     "support": round(scores[best], 3)})
    random.Random(0).shuffle(rows)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    from hydra.utils import instantiate

    from bench.cli import compose
    from bench.text.words import features

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["evaluate", "candidates"])
    parser.add_argument("--out", type=Path, help="candidates: the file to write")
    parser.add_argument("--labels", type=Path, default=Path(__file__).with_name("witness_labels.jsonl"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/multinews-dev"))
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. consensus.witness_threshold=0.8")
    args = parser.parse_args(argv)
    if args.command == "candidates":
        if args.out is None:
            parser.error("candidates needs --out FILE")
        print(f"{candidates(args.data, args.out)} candidate pairs written to {args.out}")
        return
    pairs, y = load_pairs(args.labels, args.data)
    cfg = compose(args.overrides)
    matcher = instantiate(cfg.matcher)
    threshold, min_words = cfg.consensus.witness_threshold, cfg.consensus.witness_min_words
    scores = np.array(matcher.support(pairs))
    long_enough = np.array([len(features(fact).content) >= min_words for _, fact in pairs])
    y_arr = np.array(y)
    out = {"pairs": len(y), "positives": int(y_arr.sum()), "matcher": cfg.matcher["_target_"],
           "witness_min_words": min_words}
    if threshold is not None:
        p, r, n = precision_recall(list((scores >= threshold) & long_enough), y)
        out["shipped"] = {"witness_threshold": threshold, "precision": p, "recall_in_sample": r, "predicted": n}
    grid = np.round(np.arange(0.6, 1.001, 0.05), 3)
    folds = np.random.default_rng(0).permutation(len(y)) % 5
    held, chosen = np.zeros(len(y), bool), []
    for k in range(5):
        train = folds != k
        ok = [t for t in grid if ((scores >= t) & long_enough)[train].sum()
              and y_arr[train][((scores >= t) & long_enough)[train]].mean() >= args.target]
        t = min(ok) if ok else grid[-1]
        chosen.append(float(t))
        held[~train] = (scores[~train] >= t) & long_enough[~train]
    p, r, n = precision_recall(list(held), y)
    out["cross_validated"] = {"target_precision": args.target, "thresholds": chosen, "precision": p,
                              "recall_in_sample": r, "predicted": n}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
