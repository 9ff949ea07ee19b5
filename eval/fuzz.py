"""Schemathesis against the live app: every documented operation, counted, with figures.

The app runs in-process (schemathesis's ASGI client starts its lifespan once) on a database
of the caller's, with ``config/scripted.yaml``'s panel. Each operation gets ``cases`` generated
requests (hypothesis, fixed seed: the same run every time); each answer is checked for a 5xx,
for a body that does not match the schema documented for its status, for a status the
document does not list and for an undocumented content type. Failures are counted, never
raised, so a run reports all of them; the first example of each is kept.

The CI gate (``tests/http/test_fuzz.py``) runs a bounded number of cases per operation; the
long run is a command::

    uv run --locked python -m eval.fuzz --cases 500 [--database-url URL] [--admin-key]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err, Ok
from schemathesis.generation.case import Case
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.config import load_config
from app.core.db import create_engine, create_sessionmaker, session_scope
from app.core.settings import Settings
from app.http.app import create_app
from app.migrations.migrate import upgrade_sync
from app.security.models import Role
from app.security.schemas import KeyCreate
from app.security.service import KeyService

if TYPE_CHECKING:
    from fastapi import FastAPI

# Schemathesis's operation, whatever its parameter and body types.
Operation = APIOperation[Any, Any, Any, Any]

SCRIPTED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "scripted.yaml"
DEFAULT_SEED = 13

# What each check counts, by the name the report prints.
CHECKS: Mapping[str, Callable[..., Any]] = {
    "5xx": not_a_server_error,
    "schema violations": response_schema_conformance,
    "undocumented statuses": status_code_conformance,
    "undocumented content types": content_type_conformance,
}


@dataclass
class FuzzReport:
    """What a run sent and what its answers broke, per check, with one example of each."""

    cases: int = 0
    operations: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    no_quorum: int = 0  # 503 no_quorum answers: Jury's documented fail-closed, not a fault
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, check: str) -> int:
        """Return how many answers failed ``check`` (a name of ``CHECKS``)."""
        return self.failures[check]

    def lines(self) -> list[str]:
        """Return the figures, one a line, then the first example of each failure."""
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        figures = [f"operations: {self.operations}", f"cases: {self.cases}"]
        figures += [f"{name}: {self.failures[name]}" for name in CHECKS]
        figures.append(f"503 no_quorum (documented, not counted as 5xx): {self.no_quorum}")
        figures.append(f"statuses: {statuses}")
        return figures + [f"first {name}: {text}" for name, text in self.examples.items()]


def fuzz_app(
    app: FastAPI,
    *,
    cases: int,
    headers: Mapping[str, str] | None = None,
    seed_value: int = DEFAULT_SEED,
) -> FuzzReport:
    """Send ``cases`` generated requests to each operation of ``app``; return the figures."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = headers or {}
    operations = sorted(map(_operation, schema.get_all_operations()), key=_last_if_keys)
    report = FuzzReport()
    try:
        for operation in operations:
            report.operations += 1
            # Half the cases valid by the document, half not (a wrong type, a missing field).
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)
                try:
                    _fuzz_operation(strategy, report, max(1, cases // 2), dict(headers), seed_value)
                except Unsatisfiable:
                    # Nothing to get wrong: the operation takes no parameter and no body.
                    assert mode is GenerationMode.NEGATIVE
    finally:
        shutdown_lifespans()
    return report


def _operation(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    if isinstance(result, Err):
        raise result.err()  # the app's own document does not load: nothing to fuzz
    return result.ok()


def _last_if_keys(operation: Operation) -> tuple[bool, str]:
    """Order the operations that create or revoke keys last: a key created ends local mode,
    a revoked one may be the run's own, and either would leave the rest of the run 401s."""
    changes_keys = operation.method.upper() == "POST" and operation.path.startswith("/admin/keys")
    return changes_keys, f"{operation.path} {operation.method}"


def _fuzz_operation(
    strategy: Any, report: FuzzReport, cases: int, headers: dict[str, str], seed_value: int
) -> None:
    @seed(seed_value)
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Case[Operation]) -> None:
        if not headers and case.headers:
            # Local mode: a generated bearer key would only ever be refused (401).
            case.headers.pop("Authorization", None)
        response = case.call(headers=headers)
        report.cases += 1
        report.statuses[response.status_code] += 1
        code = _error_code(response.content)
        for name, check in CHECKS.items():
            if name == "5xx" and code == "no_quorum":
                # Fail-closed by design: too few jurors (all recused, say) is a documented 503.
                report.no_quorum += 1
                continue
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except FailureGroup as failures:
                report.failures[name] += 1
                example = _example(case, response.status_code, code, failures)
                report.examples.setdefault(name, example)

    run()


def _error_code(content: bytes) -> str | None:
    """Return the ``error`` of an error body, or None for any other answer."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _example(case: Case[Operation], status: int, code: str | None, failures: FailureGroup) -> str:
    titles = "; ".join(sorted({failure.title for failure in failures.exceptions}))
    return f"{case.method} {case.formatted_path} -> {status} {code or ''}: {titles}"


def scripted_settings(database_url: str) -> Settings:
    """Return the settings of a run: the scripted panel on ``database_url``, no Redis."""
    # Schemathesis's ASGI client names the host "testserver": allowed, so that the cases reach
    # the routes instead of the keyless Host check. The database gets a long timeout: the gate
    # hunts for Jury's own server errors, and a SQLite lock held past the 5 s default by a
    # machine busy with other work (seen once in CI as a 503) is not one.
    return Settings(
        database_url=database_url,
        database_timeout_s=30,
        config=SCRIPTED_CONFIG,
        auto_migrate=False,
        allowed_hosts=("testserver", "localhost", "127.0.0.1"),
    )


def admin_key(settings: Settings) -> str:
    """Create an admin key (leaving local mode) and return it."""

    async def create() -> str:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                body = KeyCreate(name="fuzz-admin", role=Role.ADMIN)
                return (await KeyService(session).create(body)).key
        finally:
            await engine.dispose()

    return anyio.run(create)


def run(database_url: str, *, cases: int, with_key: bool, seed_value: int) -> FuzzReport:
    """Migrate ``database_url``, then fuzz the app on it, in local mode or with an admin key."""
    upgrade_sync(database_url)
    settings = scripted_settings(database_url)
    headers = {"Authorization": f"Bearer {admin_key(settings)}"} if with_key else {}
    config = load_config(SCRIPTED_CONFIG, environ={})
    app = create_app(settings, config=config)
    return fuzz_app(app, cases=cases, headers=headers, seed_value=seed_value)


def main(argv: list[str] | None = None) -> int:
    """Run the long fuzz and print its figures; exit 1 if any answer failed a check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500, help="cases per operation")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--admin-key", action="store_true", help="leave local mode")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'fuzz.db'}"
        report = run(url, cases=args.cases, with_key=args.admin_key, seed_value=args.seed)
    print("\n".join(report.lines()))
    return 1 if sum(report.failures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
