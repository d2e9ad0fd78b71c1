import pytest

from tests.conftest import PLANTED


def _units_stating(consensus, matcher, fact, min_support=2):
    return [u for u in consensus.units if u.support >= min_support
            and max(matcher.support([(f.text, fact) for f in u.facts])) >= matcher.support_threshold]


@pytest.mark.parametrize("cluster", sorted(k for k in PLANTED if not k.startswith("_")))
def test_planted_consensus_facts_are_found(demo_docs, cluster):
    docs_by_cluster, matcher = demo_docs
    _, consensus = docs_by_cluster[cluster]
    for planted in PLANTED[cluster]["consensus"]:
        assert _units_stating(consensus, matcher, planted["fact"]), planted["fact"]
    for fact in PLANTED[cluster]["not_consensus"]:
        assert not _units_stating(consensus, matcher, fact), fact


def test_syndicated_copy_is_one_source_and_never_doubles_support(demo_docs):
    docs_by_cluster, matcher = demo_docs
    _, consensus = docs_by_cluster["port-alder-bridge"]
    assert consensus.source_of["coastline-wire"] == consensus.source_of["valley-courier"]
    assert [(d.articles, d.kind) for d in consensus.dependencies] == [(("coastline-wire", "valley-courier"), "copy")]
    for u in consensus.units:
        assert u.support == len({consensus.source_of[a] for a in u.articles})
    # the freight-truck detail is in the wire copy and its reprint only: one source, not consensus
    assert not _units_stating(consensus, matcher, "A freight truck was crossing the bridge", min_support=1)


def test_leave_one_out_reference_excludes_the_target_source(demo_docs):
    docs_by_cluster, _ = demo_docs
    _, consensus = docs_by_cluster["port-alder-bridge"]
    for article in ("coastline-wire", "gazette", "metro-daily"):
        own = consensus.source_of[article]
        for ref in consensus.reference(article):
            assert ref.weight == len([s for s in ref.unit.sources if s != own]) >= 2
            assert ref.attainable == (article in ref.unit.articles)


def test_seed_cluster_consensus(seed_docs):
    docs_by_cluster, matcher = seed_docs
    (_, consensus), = docs_by_cluster.values()
    pairs = {tuple(sorted(a[:3] for a in d.articles)) for d in consensus.dependencies}
    assert ("002", "003") in pairs  # 003 rewrites CNN's 002
    assert _units_stating(consensus, matcher, "Putin's first visit to North Korea in 24 years", min_support=3)
    assert _units_stating(consensus, matcher, "a welcome ceremony at Kim Il Sung Square")
    # stated only by the CNN report and its rewrite
    assert not _units_stating(consensus, matcher, "Russia has received more than 10,000 shipping containers",
                              min_support=1)
    assert not _units_stating(consensus, matcher, "he hoped Kim would visit Moscow for their next meeting",
                              min_support=1)
