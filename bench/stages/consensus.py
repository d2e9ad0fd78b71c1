"""Stage 4, consensus: align facts across a cluster's articles into content units, group dependent
articles into independent sources, and build each article's leave-one-out reference."""
from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from bench.matchers.base import Matcher
from bench.text.words import features
from bench.types import Document, Fact


@dataclass(frozen=True)
class Unit:
    id: str
    cluster_id: str
    text: str                 # the most central member fact
    facts: tuple[Fact, ...]
    articles: tuple[str, ...]
    sources: tuple[str, ...]  # independent source groups that state it
    centrality: float = 0.0
    stated_by: tuple[tuple[str, int], ...] = ()  # (article, sentence index): articles stating it in a sentence

    @property
    def support(self) -> int:
        return len(self.sources)


@dataclass(frozen=True)
class ReferenceUnit:
    unit: Unit
    weight: int        # independent sources other than the target's that state the unit
    attainable: bool   # the target article itself states the unit


@dataclass(frozen=True)
class Dependency:
    """Why two articles are not independent witnesses."""
    articles: tuple[str, str]
    kind: str             # "copy", "shared passages" or "same outlet"
    passages: int         # shared word spans of >= passage_words words, outside quotations
    copied_words: int     # words in all shared spans, quotations included
    coverage: float       # copied_words / words of the shorter article
    examples: tuple[str, ...] = ()


@dataclass
class ClusterConsensus:
    cluster_id: str
    units: list[Unit]
    source_of: dict[str, str]          # article id -> its group of mutually dependent articles (for display)
    dependencies: list[Dependency] = field(default_factory=list)
    min_support: int = 1

    def __post_init__(self):
        self._dependent: dict[str, set[str]] = defaultdict(set)
        for d in self.dependencies:
            a, b = d.articles
            self._dependent[a].add(b)
            self._dependent[b].add(a)

    def witness_groups(self, articles) -> list[tuple[str, ...]]:
        """Groups of the given articles that are not independent of each other (connected through
        dependencies among these articles only): each group is one witness."""
        return _components(sorted(set(articles)), self._dependent)

    def independent_sources(self, articles) -> list[str]:
        """`witness_groups` as the `+`-joined names written to the results."""
        return ["+".join(g) for g in self.witness_groups(articles)]

    def reference(self, article_id: str) -> list[ReferenceUnit]:
        """Units stated by at least `min_support` independent sources other than the target's own. A source
        that depends on the target (copies it, or shares its source) is not another witness."""
        out = []
        for u in self.units:
            weight = sum(1 for g in self.witness_groups((*u.articles, article_id)) if article_id not in g)
            if weight >= self.min_support:
                out.append(ReferenceUnit(u, weight, article_id in u.articles))
        return out


def _components(nodes: list[str], neighbours: dict[str, set[str]]) -> list[tuple[str, ...]]:
    allowed, seen, out = set(nodes), set(), []
    for n in nodes:
        if n in seen:
            continue
        stack, group = [n], []
        seen.add(n)
        while stack:
            x = stack.pop()
            group.append(x)
            for y in neighbours.get(x, ()):
                if y in allowed and y not in seen:
                    seen.add(y)
                    stack.append(y)
        out.append(tuple(sorted(group)))
    return sorted(out)


class ConsensusBuilder:
    """Align facts into content units, and count the independent sources that state each unit.

    Alignment: average-link clustering of facts over a sparse similarity graph. Candidate pairs come from
    blocking: only facts from different articles sharing at least `min_shared_words` content words are
    compared (an inverted index; words in more than `max_postings` facts are not used), and each fact keeps
    its `max_candidates` partners with the most shared words, so the matcher is called O(facts ×
    max_candidates) times.

    Independence: two articles are dependent when they share copied *passages*: word spans of at least
    `passage_words` words found verbatim in both. A pair is a "copy" when the shared spans cover at least
    `copy_threshold` of the shorter article; it has "shared passages" when at least `min_passages` spans lie
    outside quotations (independent reporters quote the same speech verbatim, so quotations are no evidence)
    or at least two spans cover at least `min_copied_share` of the shorter article (one shared phrase in a
    short report is a coincidence, not a copy). Articles naming the same `source`
    are one outlet. A unit's support is the number of groups of its articles that are connected by such
    dependencies (decided per unit, among the unit's own articles), so an article that reprints a wire story
    and adds its own reporting is one witness with the wire for the facts both state, and an independent one
    for the facts only it and third outlets state. An article also witnesses a unit when one of its sentences
    supports one of the unit's facts by at least `witness_threshold` (facts of at least `witness_min_words`
    content words): it says the fact among other things. A unit needs two independent witnesses (support >= 2);
    it enters an article's reference when at least `min_support` independent sources other than the
    article's own state it.
    """

    def __init__(self, matcher: Matcher, min_support: int = 1, min_shared_words: int = 2,
                 max_postings: int = 50, max_candidates: int = 10, passage_words: int = 8,
                 copy_threshold: float = 0.5, min_passages: int = 3, min_copied_share: float = 0.2,
                 witness_threshold: float | None = 0.85, witness_min_words: int = 3):
        if witness_threshold is not None and not 0 < witness_threshold <= 1:
            raise ValueError(f"witness_threshold must be in (0, 1] or null, got {witness_threshold!r}")
        self.witness_threshold = witness_threshold
        self.witness_min_words = witness_min_words
        self.matcher = matcher
        self.min_support = min_support
        self.min_shared_words = min_shared_words
        self.max_postings = max_postings
        self.max_candidates = max_candidates
        self.last_blocking: dict[str, int] = {}
        self.passage_words = passage_words
        self.copy_threshold = copy_threshold
        self.min_passages = min_passages
        self.min_copied_share = min_copied_share

    def build(self, cluster_id: str, docs: list[Document]) -> ClusterConsensus:
        deps = self._dependencies(docs)
        frame = ClusterConsensus(cluster_id, [], {}, deps, self.min_support)
        source_of = {a: "+".join(g) for g in frame.witness_groups([d.id for d in docs]) for a in g}
        facts = [f for d in docs for f in d.facts]
        groups, edges = self._align(facts)
        also = _also_stating(groups, edges, self.matcher.align_threshold)
        stated = self._stated_in_sentences(docs, facts)
        units = []
        for n_group, (members, centrality) in enumerate(groups):
            member_facts = tuple(facts[i] for i in sorted(members, key=lambda i: (facts[i].article_id, i)))
            aligned = {f.article_id for f in member_facts} | {facts[j].article_id for j in also[n_group]}
            stated_by = {}
            for i in sorted(members):
                for article, sentence in stated.get(i, ()):
                    if article not in aligned:
                        stated_by.setdefault(article, sentence)
            arts = tuple(sorted(aligned | set(stated_by)))
            srcs = tuple(frame.independent_sources(arts))
            if len(srcs) < max(2, self.min_support):
                continue  # not corroborated: one witness is no consensus
            rep = facts[max(members, key=lambda i: (centrality.get(i, 0.0), -len(facts[i].text)))]
            units.append(Unit("", cluster_id, rep.text, member_facts, arts, srcs,
                              stated_by=tuple(sorted(stated_by.items()))))
        units.sort(key=lambda u: (-u.support, u.facts[0].article_id, u.facts[0].start))
        units = [replace(u, id=f"{cluster_id}/u{n}") for n, u in enumerate(units)]
        return ClusterConsensus(cluster_id, units, source_of, deps, self.min_support)

    def _stated_in_sentences(self, docs: list[Document], facts: list[Fact]) -> dict[int, list[tuple[str, int]]]:
        """Fact index -> (article, sentence index) of the other articles with a sentence that supports the
        fact by at least `witness_threshold`: those articles state it too, although none of their facts
        aligned with it (a sentence that says it among other things). Facts with fewer than
        `witness_min_words` content words ("It was Moonlight.") are too short to be found this way."""
        if self.witness_threshold is None:
            return {}
        eligible = [i for i, f in enumerate(facts) if len(features(f.text).content) >= self.witness_min_words]
        out: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for d in docs:
            mine = [i for i in eligible if facts[i].article_id != d.id]
            found = self.matcher.supporting([s.text for s in d.sentences], [facts[i].text for i in mine],
                                            self.witness_threshold)
            for i, sentence in zip(mine, found):
                if sentence is not None:
                    out[i].append((d.id, sentence))
        return out

    # --- alignment -------------------------------------------------------------------------------
    def _align(self, facts: list[Fact]) -> tuple[list[tuple[set[int], dict[int, float]]], dict[tuple[int, int], float]]:
        index: dict[str, list[int]] = defaultdict(list)
        for i, f in enumerate(facts):
            for w in features(f.text).content:
                index[w].append(i)
        shared: Counter[tuple[int, int]] = Counter()
        too_common = 0
        for postings in index.values():
            if len(postings) > self.max_postings:  # a word in this many facts does not discriminate
                too_common += 1
                continue
            for i, j in itertools.combinations(postings, 2):
                if facts[i].article_id != facts[j].article_id:
                    shared[(i, j)] += 1
        partners: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for (i, j), n in shared.items():
            if n >= self.min_shared_words:
                partners[i].append((n, j))
                partners[j].append((n, i))
        pairs = set()
        for i, cands in partners.items():  # each fact keeps its max_candidates best-overlapping partners
            for _, j in sorted(cands, key=lambda c: (-c[0], c[1]))[: self.max_candidates]:
                pairs.add((min(i, j), max(i, j)))
        pairs = sorted(pairs)
        self.last_blocking = {"facts": len(facts), "all_pairs": len(facts) * (len(facts) - 1) // 2,
                              "compared_pairs": len(pairs), "skipped_common_words": too_common}
        sims = self.matcher.alignment_scores([(facts[i].text, facts[j].text) for i, j in pairs])
        edges = {p: s for p, s in zip(pairs, sims) if s > 0}
        return _average_link(len(facts), edges, self.matcher.align_threshold), edges

    # --- independence -------------------------------------------------------------------------------
    def _dependencies(self, docs: list[Document]) -> list[Dependency]:
        words = {d.id: passage_tokens(d.text) for d in docs}
        deps = []
        for a, b in itertools.combinations(docs, 2):
            found = shared_passages(words[a.id], words[b.id], self.passage_words)
            shorter = min(len(words[a.id]), len(words[b.id])) or 1
            copied = sum(n for _, n, _ in found)
            unquoted = [text for text, n, quoted in found if not quoted]
            coverage = copied / shorter
            kind = None
            if coverage >= self.copy_threshold:
                kind = "copy"
            elif len(unquoted) >= self.min_passages or (len(found) >= 2 and coverage >= self.min_copied_share):
                kind = "shared passages"
            elif a.article.source and a.article.source == b.article.source:
                kind = "same outlet"
            if kind:
                deps.append(Dependency((a.id, b.id), kind, len(unquoted), copied, round(coverage, 4),
                                       tuple(t for t, _, _ in found[:3])))
        return deps


_PASSAGE_WORD = re.compile(r"\w+(?:['’]\w+)?")
_QUOTE = re.compile(r"[\"“”]")


def passage_tokens(text: str) -> list[tuple[str, bool]]:
    """Lower-cased words, each marked when it stands inside a quotation (quote state resets per paragraph)."""
    out = []
    for para in text.split("\n"):
        marks = [(m.start(), m.group(0)) for m in _QUOTE.finditer(para)]
        k, inside = 0, False
        for m in _PASSAGE_WORD.finditer(para):
            while k < len(marks) and marks[k][0] < m.start():
                inside = (not inside) if marks[k][1] == '"' else marks[k][1] == "“"
                k += 1
            out.append((m.group(0).lower(), inside))
    return out


def shared_passages(a: list[tuple[str, bool]], b: list[tuple[str, bool]], n: int) -> list[tuple[str, int, bool]]:
    """Maximal word spans of >= n words that occur in both texts, greedily left to right in `a`:
    (text, length, mostly inside a quotation in `a`)."""
    wa, wb = [w for w, _ in a], [w for w, _ in b]
    first: dict[tuple[str, ...], int] = {}
    for j in range(len(wb) - n + 1):
        first.setdefault(tuple(wb[j:j + n]), j)
    out, i = [], 0
    while i <= len(wa) - n:
        j = first.get(tuple(wa[i:i + n]))
        if j is None:
            i += 1
            continue
        k = n
        while i + k < len(wa) and j + k < len(wb) and wa[i + k] == wb[j + k]:
            k += 1
        quoted = 2 * sum(q for _, q in a[i:i + k]) > k
        out.append((" ".join(wa[i:i + k]), k, quoted))
        i += k
    return out


def _also_stating(groups, edges: dict[tuple[int, int], float], threshold: float) -> list[set[int]]:
    """Facts outside a unit that state it too: a fact joins one unit, but a fact that says two things
    ("Putin was greeted in Pyongyang, his first visit in 24 years") also witnesses the other unit when
    its average similarity to that unit's members reaches the alignment threshold (the criterion
    average-link clustering uses). Its article then states the unit; the unit's facts stay as they are."""
    group_of = {i: g for g, (members, _) in enumerate(groups) for i in members}
    summed: dict[tuple[int, int], float] = defaultdict(float)
    for (i, j), s in edges.items():
        if group_of[i] != group_of[j]:
            summed[(group_of[i], j)] += s
            summed[(group_of[j], i)] += s
    out: list[set[int]] = [set() for _ in groups]
    for (g, j), total in summed.items():
        if total / len(groups[g][0]) >= threshold:
            out[g].add(j)
    return out


def _average_link(n: int, edges: dict[tuple[int, int], float], threshold: float):
    """Agglomerate while the best average similarity between two clusters is >= threshold.

    Missing edges count as 0. Returns (members, centrality) per cluster, centrality being each member's
    summed similarity to the other members."""
    members = {i: {i} for i in range(n)}
    link: dict[int, dict[int, float]] = defaultdict(dict)   # cluster -> neighbour -> summed similarity
    for (i, j), s in edges.items():
        link[i][j] = link[j][i] = s
    heap = [(-s, i, j) for (i, j), s in edges.items() if s >= threshold]
    heapq.heapify(heap)
    next_id = n
    while heap:
        neg, a, b = heapq.heappop(heap)
        if a not in members or b not in members:
            continue
        avg = link[a].get(b, 0.0) / (len(members[a]) * len(members[b]))
        if abs(avg + neg) > 1e-12:
            continue  # stale entry
        new = next_id
        next_id += 1
        members[new] = members.pop(a) | members.pop(b)
        combined: dict[int, float] = defaultdict(float)
        for old in (a, b):
            for nb, s in link.pop(old).items():
                if nb not in (a, b):
                    combined[nb] += s
                    del link[nb][old]
        for nb, s in combined.items():
            link[new][nb] = link[nb][new] = s
            avg = s / (len(members[new]) * len(members[nb]))
            if avg >= threshold:
                heapq.heappush(heap, (-avg, min(new, nb), max(new, nb)))
    out = []
    for m in members.values():
        cent = {i: sum(edges.get((min(i, j), max(i, j)), 0.0) for j in m if j != i) for i in m}
        out.append((m, cent))
    return out
