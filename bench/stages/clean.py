"""Stage 2, cleaning: strip page boilerplate from news articles and keep the news, recording every removal."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from bench.types import Article, CleanArticle, Removal

_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*\s*$|[\"”’]\s*$")
_WEEKDAY = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_NAME = r"[A-Z][\w.'’-]+(?:\s+(?:[A-Z][\w.'’-]+|de|van|von|da|al-[\w-]+)){0,3}"

def _any_of(*phrases: str) -> re.Pattern:
    """A case-insensitive rule matching any of the phrases (regular expressions) as whole words."""
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.I)


# (reason, pattern) applied to whole blocks (lines); first match wins.
_BLOCK_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("byline", re.compile(rf"^(?:by|written by|words by)\s+{_NAME}(?:\s*(?:,|and|&)\s*{_NAME})*(?:\s*[,|].*)?$", re.I)),
    ("byline", re.compile(r"^(?:reporting|additional reporting|writing|editing) by\b.*$", re.I)),
    ("byline", re.compile(r"\bcontributed to this (?:report|story|article)\.?$", re.I)),
    ("photo credit", re.compile(r"^(?:©|\(c\)|photo:|image:|photograph:|credit:)|getty images|/afp\b|/reuters\b|\bap photo\b", re.I)),
    ("date or weather header", re.compile(rf"^(?:{_WEEKDAY},?\s+)?{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}\s*$|^{_WEEKDAY},?\s+{_MONTH}\s+\d{{1,2}}", re.I)),
    ("date or weather header", re.compile(r"-?\d+(?:\.\d+)?\s*°?\s*[CF]\b(?!\w)|°", re.I)),
    ("date or weather header", re.compile(r"^(?:posted|published|updated|last updated)\b|\b\d+\s+min(?:ute)?s?\s+read\b", re.I)),
    ("subscription prompt", _any_of(
        "sign up", "subscribe", "subscriber", "newsletter", "inbox", "log in", "unlimited access", "breaking news alerts",
        "download our app", "stay informed", "stay in touch", "follow us", "follow our", "latest news, offers",
        "special announcements", "listen live", "get the app", "support our journalism", "become a member")),
    ("related links", re.compile(r"^(?:related(?: articles| stories| coverage)?|read more|also read|see also|more from|"
                                 r"most popular|most read|latest posts|trending|recommended|don't miss|you may also like)\b", re.I)),
    ("page furniture", re.compile(r"^(?:advertisement|share this article|share|back to top(?: button)?|comments?|"
                                  r"print|email|facebook|twitter|whatsapp|linkedin|skip to content|"
                                  r"this is a developing story|copyright|all rights reserved)\b|all rights reserved|^home\s*[>›»]", re.I)),
    ("archive or crawl notice", re.compile(
        r"\b(?:internet archive|wayback machine|archive-it|warc files?|crawl data|web captures|web collections?)\b|"
        r"\b(?:these|this|the) crawls?\b|\bcrawls? (?:of|performed|were|was|are)\b", re.I)),
    ("script or player notice", re.compile(
        r"\b(?:enable|turn on) javascript\b|\bjavascript (?:is )?(?:required|disabled)\b|requires javascript|"
        r"media playback is unsupported|your browser does not support|function\s*\(\s*\)\s*\{|</?div\b", re.I)),
    ("cookie or paywall notice", _any_of(
        "uses? cookies", "cookie policy", "accept (?:all )?cookies", "privacy policy", "terms of (?:use|service)",
        "to continue reading", "free articles? (?:left|remaining)", "you have reached your (?:free )?(?:article )?limit",
        "already a subscriber", "subscribers? only", "create a free account", "ad ?blocker")),
    ("photo caption", re.compile(r"^hide caption\b|\bcaption \d+ of \d+\b|^media caption\b|^photos?:|"
                                 r"\.\.\. \((?:associated press|ap|reuters|afp)\)$", re.I)),
    ("social media embed", re.compile(r"tweet with a location|location information to your tweets|tweet location history|"
                                      r"^(?:turn on|not now|learn more)$|embedded content|view this post on instagram", re.I)),
]
_DATELINE = re.compile(r"^(?:[A-Z][A-Z .,'’-]{1,40}(?:\([^)]{1,40}\))?|\(?[A-Z]{2,10}\)?)\s+[—–-]{1,2}\s+")
_RELATED_HEADERS = ("related links",)
_ANY_LENGTH = ("byline", "photo credit", "archive or crawl notice", "script or player notice")  # checked on long blocks too
_LIST_MIN_ITEMS = 3  # this many short unpunctuated lines in a row are a list, not headings


@dataclass
class Cleaner:
    """Rule-based boilerplate remover.

    min_words: an article with fewer words of news left is dropped as all boilerplate.
    max_chars: longer articles are skipped (recorded), never truncated silently.
    heading_max_words: an unpunctuated line up to this long is a heading or page furniture.
    """

    min_words: int = 25
    max_chars: int = 200_000
    heading_max_words: int = 20
    languages: list[str] = field(default_factory=lambda: ["en"])  # ISO 639-1 codes the facts model reads
    min_language_confidence: float = 0.7

    def clean(self, article: Article) -> tuple[CleanArticle, str | None]:
        """Return the cleaned article and, if it must be dropped, the reason."""
        if not article.text.strip():
            return CleanArticle(article, "", ()), "empty article"
        if len(article.text) > self.max_chars:
            return CleanArticle(article, "", ()), (
                f"article has {len(article.text):,} characters, over clean.max_chars={self.max_chars:,}")
        language, confidence = detect_language(article.text)
        if language not in self.languages and confidence >= self.min_language_confidence:
            wanted = "English" if list(self.languages) == ["en"] else "in clean.languages " + "/".join(self.languages)
            return CleanArticle(article, "", ()), (
                f"not {wanted}: detected language {language!r} (confidence {confidence:.2f}); to score it, add it "
                "to clean.languages and set a fact-extraction model for it")
        kept, removed = self._clean_blocks(article)
        text = "\n\n".join(kept)
        if len(text.split()) < self.min_words:
            removed_words: dict[str, int] = {}
            for r in removed:
                removed_words[r.reason] = removed_words.get(r.reason, 0) + len(r.text.split())
            top = ", ".join(f"{reason} {n} words" for reason, n in
                            sorted(removed_words.items(), key=lambda kv: -kv[1])[:2])
            return CleanArticle(article, text, tuple(removed)), (
                f"only {len(text.split())} words of news left after cleaning (clean.min_words={self.min_words}); "
                f"the page is boilerplate (removed: {top or 'nothing'})")
        return CleanArticle(article, text, tuple(removed)), None

    def _clean_blocks(self, article: Article) -> tuple[list[str], list[Removal]]:
        blocks = [re.sub(r"\s+", " ", b).strip() for b in re.split(r"\n", article.text.replace("\r", ""))]
        blocks = [b for b in blocks if b]
        authors = _author_names(blocks)
        kept: list[str] = []
        removed: list[Removal] = []
        seen: set[str] = set()
        in_related = False
        title = _norm(article.title)
        headings: list[int] = []  # indices into `removed` of the current run of adjacent heading lines

        def end_heading_run():
            if len(headings) >= _LIST_MIN_ITEMS:
                for i in headings:
                    removed[i] = Removal(removed[i].text, "list")
            headings.clear()

        for block in blocks:
            reason = self._block_reason(block, authors)
            prose = _is_prose(block, self.heading_max_words)
            if reason is None and in_related and not prose:
                reason = "related links"
            if reason is not None:
                in_related = reason in _RELATED_HEADERS or (in_related and not prose)
                end_heading_run()
                removed.append(Removal(block, reason))
                continue
            in_related = False
            key = _norm(block)
            if key in seen:
                removed.append(Removal(block, "repeated paragraph"))
                continue
            if key == title or not prose:
                headings.append(len(removed))
                removed.append(Removal(block, "heading or page furniture"))
                seen.add(key)
                continue
            end_heading_run()
            seen.add(key)
            m = _DATELINE.match(block)
            if m and len(block) - m.end() > 40:
                removed.append(Removal(m.group(0).strip(), "dateline"))
                block = block[m.end():]
            kept.append(block)
        end_heading_run()
        return kept, removed

    def _block_reason(self, block: str, authors: set[str]) -> str | None:
        short = len(block.split()) <= 40
        for reason, pattern in _BLOCK_RULES:
            if (short or reason in _ANY_LENGTH) and pattern.search(block):
                if reason == "byline" and len(block.split()) > 25:
                    continue
                return reason
        if block in authors:
            return "byline"
        for name in authors:
            if block.startswith(name + " ") and re.match(
                    rf"{re.escape(name)}\s+(?:is|was|has|covers|writes|holds|joined|previously|lives)\b", block):
                return "author bio"
        return None


@lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


_ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to in a is that for it was on with as he be by at are from his this have an they which not but "
    "had has were their said been its who would will".split())


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability (py3langid, deterministic), from the first 5,000 characters. Text in
    which English function words make up at least 15% of the words is English without asking the
    model (German or French text has about 3%), which spares loading it on English corpora."""
    sample = text[:5000]
    words = re.findall(r"[a-z]+", sample.lower())
    if len(words) >= 20 and sum(w in _ENGLISH_FUNCTION_WORDS for w in words) >= 0.15 * len(words):
        return "en", 1.0
    language, probability = _language_identifier().classify(sample)
    return language, float(probability)


def _author_names(blocks: list[str]) -> set[str]:
    """Names from bylines and from bare name lines that repeat (a common author-box pattern)."""
    names: set[str] = set()
    for b in blocks:
        m = re.match(rf"^(?:by|written by)\s+({_NAME})", b, re.I)
        if m:
            names.add(m.group(1).split(",")[0].strip())
    bare = [b for b in blocks if re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z'’-]+){1,2}", b)]
    names.update(b for b in bare if bare.count(b) > 1)
    return names


def _is_prose(block: str, heading_max_words: int) -> bool:
    words = len(block.split())
    return words > heading_max_words or (words >= 4 and bool(_TERMINAL.search(block)))


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()
