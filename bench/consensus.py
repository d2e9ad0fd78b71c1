"""Stage 4, consensus: align facts across a cluster's articles into content units, group dependent
articles into independent sources, and build each article's leave-one-out reference."""
from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from bench.matching import Matcher, features, _WORD, _stem, _stopwords
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
    articles: tuple[str, str]
    kind: str          # "copy" or "rewrite"
    bigram_containment: float
    shared_exclusive: float


@dataclass
class ClusterConsensus:
    cluster_id: str
    units: list[Unit]
    source_of: dict[str, str]          # article id -> source group id
    dependencies: list[Dependency] = field(default_factory=list)
    min_support: int = 2

    def reference(self, article_id: str) -> list[ReferenceUnit]:
        """Units stated by at least `min_support` independent sources other than the target's own."""
        own = self.source_of[article_id]
        out = []
        for u in self.units:
            weight = sum(1 for s in u.sources if s != own)
            if weight >= self.min_support:
                out.append(ReferenceUnit(u, weight, article_id in u.articles))
        return out


class ConsensusBuilder:
    """Average-link clustering of facts over a sparse similarity graph.

    Candidate pairs come from blocking: only facts from different articles that share at least
    `min_shared_words` content words are compared (an inverted index; words found in more than
    `max_postings` facts are not used for blocking), and each fact keeps only its `max_candidates`
    partners with the most shared words. The matcher is therefore called O(facts × max_candidates)
    times, not O(facts²). Articles whose copy or rewrite relation is detected are one source:
    a copy shares >= `copy_threshold` of its content-word bigrams; a rewrite shares >= `rewrite_threshold`
    of its vocabulary exclusively with the other article (words no third article of the cluster uses),
    and at least `rewrite_min_words` such words.
    """

    def __init__(self, matcher: Matcher, min_support: int = 2, min_shared_words: int = 2,
                 copy_threshold: float = 0.5, rewrite_threshold: float = 0.12, rewrite_min_words: int = 10,
                 max_postings: int = 50, max_candidates: int = 10):
        self.matcher = matcher
        self.min_support = min_support
        self.min_shared_words = min_shared_words
        self.max_postings = max_postings
        self.max_candidates = max_candidates
        self.last_blocking: dict[str, int] = {}
        self.copy_threshold = copy_threshold
        self.rewrite_threshold = rewrite_threshold
        self.rewrite_min_words = rewrite_min_words

    def build(self, cluster_id: str, docs: list[Document]) -> ClusterConsensus:
        source_of, deps = self._sources(docs)
        facts = [f for d in docs for f in d.facts]
        groups = self._align(facts)
        units = []
        for members, centrality in groups:
            member_facts = tuple(facts[i] for i in sorted(members, key=lambda i: (facts[i].article_id, i)))
            arts = tuple(sorted({f.article_id for f in member_facts}))
            srcs = tuple(sorted({source_of[a] for a in arts}))
            if len(srcs) < self.min_support:
                continue  # can never reach min_support other sources for any target
            rep = facts[max(members, key=lambda i: (centrality.get(i, 0.0), -len(facts[i].text)))]
            units.append(Unit("", cluster_id, rep.text, member_facts, arts, srcs))
        units.sort(key=lambda u: (-u.support, u.facts[0].article_id, u.facts[0].start))
        units = [Unit(f"{cluster_id}/u{n}", u.cluster_id, u.text, u.facts, u.articles, u.sources)
                 for n, u in enumerate(units)]
        return ClusterConsensus(cluster_id, units, source_of, deps, self.min_support)

    # --- alignment -------------------------------------------------------------------------------
    def _align(self, facts: list[Fact]) -> list[tuple[set[int], dict[int, float]]]:
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
        sims = self.matcher.similarity([(facts[i].text, facts[j].text) for i, j in pairs])
        edges = {p: s for p, s in zip(pairs, sims) if s > 0}
        return _average_link(len(facts), edges, self.matcher.align_threshold)

    # --- independence -------------------------------------------------------------------------------
    def _sources(self, docs: list[Document]) -> tuple[dict[str, str], list[Dependency]]:
        stop = _stopwords()
        seqs = {d.id: [_stem(w.lower()) for w in _WORD.findall(d.text) if w.lower() not in stop] for d in docs}
        vocab = {a: set(s) for a, s in seqs.items()}
        bigrams = {a: {tuple(s[i:i + 2]) for i in range(len(s) - 1)} for a, s in seqs.items()}
        df = Counter(w for v in vocab.values() for w in v)
        parent = {d.id: d.id for d in docs}

        def find(a: str) -> str:
            while parent[a] != a:
                a = parent[a]
            return a

        deps = []
        for a, b in itertools.combinations([d.id for d in docs], 2):
            smaller = min(len(bigrams[a]), len(bigrams[b])) or 1
            containment = len(bigrams[a] & bigrams[b]) / smaller
            exclusive = {w for w in vocab[a] & vocab[b] if df[w] == 2} if len(docs) > 2 else set()
            excl_share = len(exclusive) / (min(len(vocab[a]), len(vocab[b])) or 1)
            kind = None
            if containment >= self.copy_threshold:
                kind = "copy"
            elif excl_share >= self.rewrite_threshold and len(exclusive) >= self.rewrite_min_words:
                kind = "rewrite"
            if kind:
                deps.append(Dependency((a, b), kind, round(containment, 4), round(excl_share, 4)))
                parent[find(b)] = find(a)
        groups: dict[str, list[str]] = defaultdict(list)
        for d in docs:
            groups[find(d.id)].append(d.id)
        source_of = {}
        for members in groups.values():
            gid = "+".join(sorted(members))
            for m in members:
                source_of[m] = gid
        return source_of, deps


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
