"""The schemathesis gate: generated requests to every documented operation of the live app.

config/scripted.yaml's panel, a fixed seed and a bounded number of cases per operation (half
valid by the OpenAPI document, half not): no answer may be a 5xx, have a body other than the
one documented for its status, a status the document does not list, or an undocumented
content type. In local mode on SQLite, and with an admin key on PostgreSQL. The long run
with more cases is ``python -m eval.fuzz`` (eval/fuzz.py).
"""

from __future__ import annotations

import pytest

from eval.fuzz import CHECKS, FuzzReport, run

# Per operation, half valid and half not: about 25 s a mode on this 2-core machine.
CASES = 30


def assert_clean(report: FuzzReport) -> None:
    """Assert every operation was sent its cases and no answer failed a check."""
    print("\n".join(report.lines()))
    assert report.operations >= 20
    assert report.cases >= report.operations * CASES // 2
    # The cases reach the routes: a refused Host (400) would answer every one alike.
    assert report.statuses[400] < report.cases // 10
    assert {name: report.count(name) for name in CHECKS} == dict.fromkeys(CHECKS, 0), (
        report.examples
    )


def test_local_mode_on_sqlite_gives_no_5xx_and_no_schema_violation(sqlite_database: str) -> None:
    report = run(sqlite_database, cases=CASES, with_key=False, seed_value=13)

    assert_clean(report)
    # Local mode: requests are answered, not refused for want of a key.
    assert report.statuses[200] > report.statuses[401]


@pytest.mark.postgres
def test_an_admin_key_on_postgres_gives_no_5xx_and_no_schema_violation(
    postgres_database: str,
) -> None:
    report = run(postgres_database, cases=CASES, with_key=True, seed_value=13)

    assert_clean(report)
    assert report.statuses[200] > report.statuses[401]
