"""``jury eval faults``: the two cheap gates end to end, through the command itself.

The command starts real ``jury serve`` processes (and, for the canary, a fake upstream on
loopback that echoes the juror's key in its errors); the test reads the figures it wrote.
The slow gates (frozen and killed PostgreSQL, Redis outages, kill -9, the idempotency race)
run the same code from ``jury eval faults``; their committed figures are in
eval/reports/faults/gates.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.main import app


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, int]:
    """Run the CSRF/Host and canary gates once; return their rows by gate, the report, the code."""
    folder = tmp_path_factory.mktemp("faults")
    args = ["eval", "faults", "--gates", "csrf-host,canary"]
    result = CliRunner().invoke(app, [*args, "--out", str(folder), "--work", str(folder / "w")])
    rows = json.loads(Path(folder / "gates.json").read_text())
    return {row["gate"]: row for row in rows}, (folder / "gates.md").read_text(), result.exit_code


def test_the_command_exits_zero_when_its_gates_pass(ran: tuple[dict[str, Any], str, int]) -> None:
    rows, _report, exit_code = ran

    assert exit_code == 0
    assert rows["csrf-host"]["passed"] is True
    assert rows["canary"]["passed"] is True


def test_every_cross_origin_form_and_foreign_host_is_refused_unreflected(
    ran: tuple[dict[str, Any], str, int],
) -> None:
    row = ran[0]["csrf-host"]

    # 3 forms x 3 origins (another site, "null", our own without a token) + 3 review pages
    # + 2 keyless JSON API reads under the foreign Host.
    assert row["figures"]["expected_refusals"] == 14
    assert row["figures"]["refused"] == 14
    assert row["figures"]["answered_foreign_host"] == ["/review/review.css"]
    assert row["figures"]["reflected"] == 0
    assert row["other_5xx"] == 0
    assert row["no_answer"] == 0


def test_the_canary_is_nowhere_although_the_upstream_echoed_it(
    ran: tuple[dict[str, Any], str, int],
) -> None:
    row = ran[0]["canary"]

    assert row["figures"]["hits"] == {"responses": 0, "metrics": 0, "log": 0, "database": 0}
    assert row["figures"]["upstream_calls"] > 0
    # The two jurors on the upstream fail in each of three verdicts: their failures are on record.
    assert row["figures"]["failures_recorded"] == 6
    assert row["2xx"] == row["requests"]
    assert row["left_unfinished"] == 0


def test_the_report_is_a_table_with_one_row_per_gate(ran: tuple[dict[str, Any], str, int]) -> None:
    report = ran[1]

    assert "| gate | requests | 2xx | 4xx | 503 | other 5xx |" in report
    assert "| csrf-host | 16 | 2 | 14 | 0 | 0 | 0 | 0 |" in report
    assert "| canary | 11 | 11 | 0 | 0 | 0 | 0 | 0 |" in report
    assert "Load average" in report
