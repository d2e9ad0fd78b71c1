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


def _doc(article_id: str, sentences: list[str], facts: list[str]):
    from bench.types import Article, Document, Fact, Sentence

    text = " ".join(sentences)
    sents, start = [], 0
    for s in sentences:
        sents.append(Sentence(s, start, start + len(s)))
        start += len(s) + 1
    fact_objs = tuple(Fact(f"{article_id}#{n}", article_id, f, text.index(f), text.index(f) + len(f),
                           next(i for i, s in enumerate(sentences) if f in s)) for n, f in enumerate(facts))
    return Document("c", Article(article_id, article_id, "", text), text, tuple(sents), fact_objs)


WITNESS_DOCS = [
    _doc("a", ["The council approved a new budget for road repairs.", "It was Moonlight."],
         ["The council approved a new budget for road repairs", "It was Moonlight."]),
    # b states a's fact inside a longer sentence whose parse gave another fact: alignment cannot join them
    # (and shares no passage of 8 words with a: the two are independent)
    _doc("b", ["After a long meeting that covered parks and parking fees, the council approved a new budget for "
               "repairs to city roads.", "It was Moonlight, the producers said."],
         ["a long meeting that covered parks and parking fees"]),
    _doc("c", ["Fishermen reported a record salmon run on the northern river this autumn."],
         ["Fishermen reported a record salmon run on the northern river"]),
]


def test_an_article_whose_sentence_states_a_fact_witnesses_its_unit():
    from bench.matchers.lexical import LexicalMatcher
    from bench.stages.consensus import ConsensusBuilder

    matcher = LexicalMatcher(align_threshold=0.7, alignment="segments")
    consensus = ConsensusBuilder(matcher, witness_threshold=0.85, witness_min_words=3).build("c", WITNESS_DOCS)
    (unit,) = consensus.units
    assert unit.text == "The council approved a new budget for road repairs"
    assert unit.articles == ("a", "b") and unit.support == 2
    assert unit.stated_by == (("b", 0),)  # the article and the index of its sentence, recorded
    assert [r.attainable for r in consensus.reference("b")] == [True]  # b states it: attainable for b
    # "It was Moonlight." has one content word: too short to be found in a sentence
    # without sentence witnesses (null), and below the threshold, the fact has one witness: no unit
    assert ConsensusBuilder(matcher, witness_threshold=None).build("c", WITNESS_DOCS).units == []
    assert ConsensusBuilder(matcher, witness_threshold=1.0, witness_min_words=7).build("c", WITNESS_DOCS).units == []
    with pytest.raises(ValueError, match="witness_threshold"):
        ConsensusBuilder(matcher, witness_threshold=0.0)
