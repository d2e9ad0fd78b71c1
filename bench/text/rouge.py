"""ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures, exactly as `rouge-score` computes them, without its repeated
work: each text is tokenised once (rouge-score re-tokenises and re-stems it on every call), and each
sentence pair's longest common subsequence is computed once (rougeLsum's pure-Python LCS table is most of
a run's scoring time, and the same reference and summary sentences meet again across summarizers and
articles). Sentence pairs with no token in common skip the table: their LCS is empty.

Tokens, n-gram counts, the LCS table and its read-out, and the union-LCS hit counting are rouge-score's
own functions or line-for-line the same; `tests/test_summarize_score.py` checks the scores against
`rouge_scorer.RougeScorer.score` on many texts."""
from __future__ import annotations

import collections
from collections.abc import Sequence
from functools import lru_cache

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")  # rouge-score's names


class Rouge:
    """F-measures of rouge1, rouge2 and rougeLsum; rougeLsum reads sentences from the newline-joined text
    (rouge-score's `split_summaries=False`). `cache_size` bounds each memo (texts' tokens, sentence pairs'
    LCS), so that memory stays flat however many clusters a run scores."""

    def __init__(self, use_stemmer: bool = True, cache_size: int = 100_000):
        from rouge_score import rouge_scorer, tokenize
        from rouge_score.tokenizers import DefaultTokenizer

        stemmer = DefaultTokenizer(use_stemmer)._stemmer
        stem = lru_cache(maxsize=cache_size)(stemmer.stem) if stemmer is not None else None

        class _Stemmer:
            def stem(self, word: str) -> str:
                return stem(word)

        self._stemmer = _Stemmer() if stem is not None else None
        self._tokenize_text = tokenize.tokenize
        self._lcs_table = rouge_scorer._lcs_table
        self._backtrack = rouge_scorer._backtrack_norec
        self.tokens = lru_cache(maxsize=cache_size)(self._tokens)
        self.lcs_indices = lru_cache(maxsize=cache_size)(self._lcs_indices)

    def _tokens(self, text: str) -> tuple[str, ...]:
        return tuple(self._tokenize_text(text, self._stemmer))

    def _lcs_indices(self, ref: tuple[str, ...], can: tuple[str, ...]) -> tuple[int, ...]:
        """rouge_scorer.lcs_ind: the indices into `ref` of one longest common subsequence."""
        if not set(ref).intersection(can):
            return ()
        return tuple(self._backtrack(self._lcs_table(ref, can), ref, can))

    def score(self, reference_sentences: Sequence[str], summary_sentences: Sequence[str]) -> dict[str, float]:
        target, prediction = "\n".join(reference_sentences), "\n".join(summary_sentences)
        ref_sents = [self.tokens(s) for s in target.split("\n") if len(s)]
        can_sents = [self.tokens(s) for s in prediction.split("\n") if len(s)]
        # newline is whitespace to the tokenizer: the whole text's tokens are its lines' tokens in order
        ref_tokens = [t for s in ref_sents for t in s]
        can_tokens = [t for s in can_sents for t in s]
        return {"rouge1": _ngram_f(ref_tokens, can_tokens, 1), "rouge2": _ngram_f(ref_tokens, can_tokens, 2),
                "rougeLsum": self._summary_level_lcs_f(ref_sents, can_sents)}

    def _summary_level_lcs_f(self, ref_sents: list[tuple[str, ...]], can_sents: list[tuple[str, ...]]) -> float:
        """rouge_scorer._summary_level_lcs, its F-measure."""
        if not ref_sents or not can_sents:
            return 0.0
        m, n = sum(map(len, ref_sents)), sum(map(len, can_sents))
        if not n or not m:
            return 0.0
        counts_r = collections.Counter(t for s in ref_sents for t in s)
        counts_c = collections.Counter(t for s in can_sents for t in s)
        hits = 0
        for r in ref_sents:
            union = sorted(set().union(*(self.lcs_indices(r, c) for c in can_sents)))
            for t in (r[i] for i in union):
                if counts_c[t] > 0 and counts_r[t] > 0:
                    hits += 1
                    counts_c[t] -= 1
                    counts_r[t] -= 1
        return _fmeasure(hits / n, hits / m)


def _ngram_f(target: list[str], prediction: list[str], n: int) -> float:
    """rouge_scorer._create_ngrams + _score_ngrams, the F-measure."""
    t = collections.Counter(tuple(target[i:i + n]) for i in range(len(target) - n + 1))
    p = collections.Counter(tuple(prediction[i:i + n]) for i in range(len(prediction) - n + 1))
    overlap = sum(min(c, p[g]) for g, c in t.items())
    precision = overlap / max(sum(p.values()), 1)
    recall = overlap / max(sum(t.values()), 1)
    return _fmeasure(precision, recall)


def _fmeasure(precision: float, recall: float) -> float:
    """rouge_score.scoring.fmeasure."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
