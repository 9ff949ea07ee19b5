"""The default panel ships its dev-set evidence, and only that panel is credited with it."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.config import load_config
from eval.evidence import REPORTS_DIR, low_trust_note, read_report, shipped_evidence
from tests.builders import REPO_ROOT, SCRIPTED_CONFIG

DEFAULT_CONFIG = REPO_ROOT / "config" / "jury.yaml"


def test_the_default_panel_gets_every_committed_run() -> None:
    evidence = shipped_evidence(load_config(DEFAULT_CONFIG))

    committed = sorted(path.parent.name for path in REPORTS_DIR.glob("*/report.json"))
    assert sorted(run.report.parent.name for run in evidence) == committed
    assert len(committed) >= 3
    for run in evidence:
        assert set(run.jurors) == {"smollm", "gemma", "qwen-small"}
        assert run.judge.n > 0


def test_the_note_states_the_measured_accuracy_once_per_dataset() -> None:
    evidence = shipped_evidence(load_config(DEFAULT_CONFIG))
    note = low_trust_note(evidence)

    assert note is not None
    assert note.startswith("Low trust")
    titles = {run.title for run in evidence}
    # truthfulqa/ and truthfulqa-20/ are two runs of one dataset.
    assert len(titles) < len(evidence)
    for title in titles:
        assert note.count(f" on {title}") == 1
        largest = max((run for run in evidence if run.title == title), key=lambda r: r.judge.n)
        assert f"{largest.judge.render()} on {title}" in note


def test_the_largest_run_of_a_dataset_is_the_one_stated(tmp_path: Path) -> None:
    source = json.loads((REPORTS_DIR / "truthfulqa" / "report.json").read_text())
    runs = []
    for name, successes, n in (("a-small", 1, 4), ("b-large", 7, 10), ("c-small", 3, 3)):
        source["accuracy"]["judge"] = {"successes": successes, "n": n}
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(source))
        runs.append(read_report(tmp_path / name / "report.json"))

    note = low_trust_note(runs)

    assert note is not None
    assert "7/10 (0.70) on truthfulqa_binary" in note
    assert "1/4" not in note
    assert "3/3" not in note


def test_a_panel_the_reports_did_not_score_gets_no_evidence() -> None:
    assert shipped_evidence(load_config(SCRIPTED_CONFIG)) == []
    assert low_trust_note([]) is None


def test_a_report_reads_back_its_scores(tmp_path: Path) -> None:
    source = json.loads((REPORTS_DIR / "truthfulqa" / "report.json").read_text())
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "report.json"
    path.write_text(json.dumps(source))

    run = read_report(path)
    judge = source["accuracy"]["judge"]
    assert (run.judge.successes, run.judge.n) == (judge["successes"], judge["n"])
    gemma = source["accuracy"]["jurors"]["gemma"]["round1"]
    assert run.jurors["gemma"].successes == gemma["successes"]
