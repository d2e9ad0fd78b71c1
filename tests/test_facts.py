from bench.facts import ClauseFacts, SentenceFacts


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
    assert "his first visit to North Korea in 24 years" in texts


def test_sentence_facts_baseline():
    (p,) = SentenceFacts().extract([("a", "One fact here. Another fact there.")])
    assert [f.text for f in p.facts] == ["One fact here.", "Another fact there."]
