"""The ``jury`` command line, in-process, on config/scripted.yaml and a SQLite file of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from tests.builders import SCRIPTED_CONFIG

CONFIG = ["--config", str(SCRIPTED_CONFIG)]


@pytest.fixture
def runner(sqlite_database: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a runner whose commands use this test's database."""
    monkeypatch.setenv("JURY_DATABASE_URL", sqlite_database)
    monkeypatch.setenv("JURY_AUTO_MIGRATE", "false")
    return CliRunner()


def flat(text: str) -> str:
    """Join the words of rich's output, whatever the terminal width wrapped."""
    return " ".join(text.split())


def ask_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    """Run ``jury ask --json`` and return the verdict it printed."""
    result = runner.invoke(app, ["ask", "Ship release 4.2?", *CONFIG, "--json", *args])
    assert result.exit_code == 0, result.output
    verdict: dict[str, Any] = json.loads(result.stdout)
    return verdict


def test_ask_prints_the_verdict_the_dissent_and_the_shift(runner: CliRunner) -> None:
    result = runner.invoke(app, ["ask", "Ship release 4.2 to production?", *CONFIG])

    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    assert "Verdict: approve" in output
    assert "Dissent: charlie (scripted) says reject: Friday-evening deploys" in output
    assert "Shift: bravo reject → approve in round 2" in output
    assert "round-1 majority reject, final majority approve" in output
    assert "Changed: the round-1 majority was reject; the final verdict is approve" in output
    # The scripted panel is not the shipped local panel: no dev-set note is credited to it.
    assert "Low trust" not in output
    # The live progress: every juror of both rounds, then the judge.
    assert output.count("round 1 ") >= 3
    assert "judge judge approve (0.82)" in output


def test_ask_json_prints_the_api_verdict(runner: CliRunner) -> None:
    verdict = ask_json(runner, "--category", "deploy")

    assert verdict["verdict"] == "approve"
    assert verdict["category"] == "deploy"
    assert [(s["juror"], s["from"], s["to"]) for s in verdict["shifts"]] == [
        ("bravo", "reject", "approve")
    ]
    assert [d["juror"] for d in verdict["dissent"]] == ["charlie"]
    assert len(verdict["rounds"]) == 2


def test_ask_passes_options_and_rounds(runner: CliRunner) -> None:
    verdict = ask_json(runner, "--options", "approve,reject,defer", "--max-rounds", "1")

    assert verdict["options"] == ["approve", "reject", "defer"]
    assert len(verdict["rounds"]) == 1
    assert verdict["shifts"] == []


def test_verdicts_show_prints_a_recorded_verdict(runner: CliRunner) -> None:
    verdict = ask_json(runner)

    shown = runner.invoke(app, ["verdicts", "show", verdict["id"], *CONFIG])
    as_json = runner.invoke(app, ["verdicts", "show", verdict["id"], *CONFIG, "--json"])

    assert shown.exit_code == 0, shown.output
    output = flat(shown.stdout)
    assert verdict["id"] in output
    assert "Verdict: approve" in output
    assert "Shift: bravo reject → approve" in output
    assert "charlie" in output
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == verdict


def test_verdicts_list_shows_recorded_verdicts(runner: CliRunner) -> None:
    first = ask_json(runner)
    second = ask_json(runner)

    listed = runner.invoke(app, ["verdicts", "list", *CONFIG])

    assert listed.exit_code == 0, listed.output
    output = flat(listed.stdout)
    assert "2 of 2" in output
    assert first["id"][:8] in output
    assert second["id"][:8] in output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ask", "", *CONFIG], "validation_error: question: String should have at least 1"),
        (["ask", "Ship?", *CONFIG, "--options", "a"], "validation_error: options: options must"),
        (["ask", "Ship?", *CONFIG, "--max-rounds", "0"], "validation_error: max_rounds: Input"),
    ],
)
def test_ask_with_bad_input_exits_2_naming_the_field_and_records_nothing(
    runner: CliRunner, args: list[str], said: str
) -> None:
    result = runner.invoke(app, args)
    listed = runner.invoke(app, ["verdicts", "list", *CONFIG])

    assert result.exit_code == 2, result.output
    assert said in flat(result.stderr)
    assert "Traceback" not in result.output
    assert "0 of 0" in flat(listed.stdout)


def test_trust_outcome_with_bad_input_exits_2_naming_the_field(runner: CliRunner) -> None:
    verdict = ask_json(runner)

    result = runner.invoke(app, ["trust", "outcome", verdict["id"], "ok\x00", *CONFIG])

    assert result.exit_code == 2, result.output
    assert "validation_error: correct_option:" in flat(result.stderr)


def test_verdicts_show_unknown_id_exits_with_not_found(runner: CliRunner) -> None:
    result = runner.invoke(app, ["verdicts", "show", "no-such-id", *CONFIG])

    assert result.exit_code == 2
    assert "not_found" in flat(result.stderr)
    assert "no-such-id" in flat(result.stderr)


def test_worker_needs_redis(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JURY_REDIS_URL", raising=False)

    result = runner.invoke(app, ["worker", *CONFIG])

    assert result.exit_code == 2
    assert "jury worker needs JURY_REDIS_URL" in flat(result.output)


CALIBRATED_CONFIG = """
protocol: {default_options: [approve, reject], max_rounds: 1}
jurors:
  - {name: a, model: scripted, family: fa, script: {rounds: [{position: approve}]}}
  - {name: b, model: scripted, family: fb, script: {rounds: [{position: reject}]}}
judges:
  - name: judge
    model: scripted
    family: fj
    label_calibration: content_free
    script:
      rounds:
        - position: approve
          label_logprobs: {approve: -0.357, reject: -1.204}
          label_prior: {approve: -0.223, reject: -1.609}
panels:
  default: {jurors: [a, b], judge: judge}
"""


def test_ask_says_when_label_calibration_changed_the_judges_choice(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "calibrated.yaml"
    config.write_text(CALIBRATED_CONFIG, encoding="utf-8")

    result = runner.invoke(app, ["ask", "Ship release 4.2?", "--config", str(config)])

    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    # The judge's 0.7 for approve is below its 0.8 on a blank case: calibrated, reject.
    assert "Verdict: reject" in output
    assert "Calibrated: the judge leaned to approve" in output
    assert "calibrated, reject" in output
