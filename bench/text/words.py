"""The text layer: words, stems, number words, content-word features and cheap segmentations, shared by
facts, matchers, consensus and summarizers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
}


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS - set(NUMBER_WORDS)) | {"’s", "'s", "s"}


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stem(word) if len(word) > 3 else word


@dataclass(frozen=True)
class TextFeatures:
    content: frozenset[str]   # stemmed content words; number words mapped to digits
    numbers: frozenset[str]
    entities: frozenset[str]  # stems of capitalised words after the first (a cheap proxy for names)


@lru_cache(maxsize=200_000)
def features(text: str) -> TextFeatures:
    stop = stopwords()
    content, numbers, entities = set(), set(), set()
    for i, m in enumerate(WORD.finditer(text)):
        raw = m.group(0)
        low = raw.lower().replace("’", "'")
        if raw[0].isdigit() or low in NUMBER_WORDS:
            num = raw.replace(",", "") if raw[0].isdigit() else NUMBER_WORDS[low]
            numbers.add(num)
            content.add(num)
            continue
        if low in stop or len(low) < 2:
            continue
        stemmed = stem(low.split("'")[0])
        content.add(stemmed)
        if raw[0].isupper() and i > 0:
            entities.add(stemmed)
    return TextFeatures(frozenset(content), frozenset(numbers), frozenset(entities))


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


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CLAUSE_SPLIT = re.compile(r",\s+(?:and|but|while|which|who|after|as|when|where)\s+|;\s+|\s+(?:and|but)\s+(?=[a-z]+ed\b)")


def segments(text: str) -> list[str]:
    """The text, its sentences, and their clauses (cheap regex splits), deduplicated, in order."""
    out = [text.strip()]
    for sent in _SENTENCE_SPLIT.split(text.strip()):
        out.append(sent.strip())
        out.extend(c.strip() for c in _CLAUSE_SPLIT.split(sent) if len(c.split()) >= 3)
    return list(dict.fromkeys(s for s in out if s))


NEGATIONS = frozenset({"not", "no", "never", "n't", "none", "nobody", "nothing", "without", "neither", "nor"})


def word_set(text: str) -> set[str]:
    """Lower-cased alphabetic words (and "n't")."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+|n't", text)}


def bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent pairs of stemmed words."""
    words = [stem(w.lower()) for w in WORD.findall(text)]
    return set(zip(words, words[1:]))
