"""`bench meta-eval` on a planted REALSumm-layout directory, its errors, and golden numbers on the dev set."""
import json

import pytest

from tests.conftest import REPO, require_shared, run_cli

REALSUMM = REPO.parent / "shared" / "validation" / "realsumm-dev"

DOCS = [
    ("The council approved the budget on Monday. The mayor praised the vote. Schools get new funding.",
     ["The council approved the budget.", "The vote was on Monday.", "Schools get new funding."]),
    ("A storm cut power to ten thousand homes. Crews restored power by Friday. Two roads stayed closed.",
     ["A storm cut power to homes.", "Crews restored power by Friday.", "Two roads stayed closed."]),
    ("The museum reopened after repairs. Visitors saw the new wing. Tickets cost twelve dollars.",
     ["The museum reopened after repairs.", "Visitors saw the new wing.", "Tickets cost twelve dollars."]),
    ("The team won the final in overtime. Its captain scored twice. Fans celebrated downtown.",
     ["The team won the final.", "The captain scored twice.", "Fans celebrated downtown."]),
]


def planted(tmp_path):
    """Systems that copy k of the reference units; labels say exactly which: a lexical matcher should agree."""
    root = tmp_path / "rs"
    (root / "summaries").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "ids.txt").write_text("\n".join(f"doc{i}" for i in range(len(DOCS))) + "\n")
    (root / "documents.txt").write_text("\n".join(d for d, _ in DOCS) + "\n")
    (root / "references.txt").write_text("\n".join(" ".join(f"<t> {u} </t>" for u in units) for _, units in DOCS) + "\n")
    (root / "SCUs.txt").write_text("\n".join("\t".join(units) for _, units in DOCS) + "\n")
    for k, name in enumerate(["none", "one", "two", "three"]):
        summaries, labels = [], []
        for i, (_, units) in enumerate(DOCS):
            chosen = [(i + j) % 3 for j in range(k)]
            summaries.append(" ".join(units[c] for c in sorted(chosen)) or "Nothing of note happened here today.")
            labels.append("\t".join("1" if c in chosen else "0" for c in range(3)))
        (root / "summaries" / f"{name}.summary").write_text("\n".join(summaries) + "\n")
        (root / "labels" / f"{name}.label").write_text("\n".join(labels) + "\n")
    return root


def test_meta_eval_agrees_with_planted_labels(tmp_path):
    root = planted(tmp_path)
    out = tmp_path / "me.json"
    proc = run_cli("meta-eval", str(root), "--matcher", "lexical", "--folds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    human = r["settings"]["human"]
    assert human["unit"]["accuracy"] == 1.0 and human["unit"]["roc_auc"] == 1.0
    assert human["system_kendall"] == pytest.approx(1.0) and human["system_pearson"] == pytest.approx(1.0)
    assert human["summary_kendall"] == pytest.approx(1.0)
    assert r["settings"]["auto"]["auto_units"] > 0 and r["settings"]["auto"]["system_kendall"] > 0.9
    assert set(r["baselines"]) == {"rouge1_recall", "rouge2_recall"}
    assert r["runtime_seconds"] > 0 and "| human units | 1.000 |" in proc.stdout
    assert "Targets for a matcher to trust: human units" in proc.stdout and "issue" not in proc.stdout
    assert out.with_suffix(".md").is_file()


def test_meta_eval_refits_combined_inside_cross_validation(tmp_path):
    root = planted(tmp_path)
    proc = run_cli("meta-eval", str(root), "--matcher", "combined", "--folds", "2", "--settings", "human",
                   "--out", str(tmp_path / "c.json"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "c.json").read_text())
    assert "cross-validation by documents" in r["protocol"] and r["folds"] == 2
    assert r["settings"]["human"]["unit"]["accuracy"] >= 0.75


def test_meta_eval_bad_input_is_a_clear_error(tmp_path):
    root = planted(tmp_path)
    (root / "labels" / "two.label").write_text("1\t0\n" * len(DOCS))
    proc = run_cli("meta-eval", str(root))
    assert proc.returncode == 2 and "2 labels for 3 units" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("meta-eval", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "ids.txt is missing" in proc.stderr
    proc = run_cli("meta-eval", str(root), "--settings", "robots")
    assert proc.returncode == 2


def test_lexical_meta_eval_on_realsumm_dev_golden():
    """Golden numbers (README) for the default matcher, so that any change to matching is visible."""
    require_shared(REALSUMM)
    from bench.matchers.lexical import LexicalMatcher
    from bench.reporting.metaeval import meta_evaluate

    r = meta_evaluate(REALSUMM, LexicalMatcher(), None, settings=("human",))
    human = r["settings"]["human"]
    assert human["unit"]["accuracy"] == pytest.approx(0.757, abs=0.001)
    assert human["system_kendall"] == pytest.approx(0.767, abs=0.001)
    assert r["baselines"]["rouge2_recall"]["summary_kendall"] == pytest.approx(0.356, abs=0.001)
