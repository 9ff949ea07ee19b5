"""Secrets never reach a model: canaries of each kind, grepped everywhere Jury writes or says.

Each canary is a value of a real credential shape. After a verdict on input that holds them all,
none appears in a prompt the scripted provider received, a database row, a log line, the metrics,
a response or an error body.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from typing import Any

import pytest
from detect_secrets.plugins.keyword import DENYLIST, DENYLIST_REGEX
from prometheus_client import generate_latest
from sqlalchemy import text

from app.core import secrets
from app.core.config import CategoryPolicy
from app.core.db import create_engine
from app.core.errors import SecretInInputError
from app.core.secrets import redact_text
from app.deliberation.schemas import Action, VerdictRequest
from app.security.redaction import redacted_kinds, screen
from tests.builders import (
    RecordingHub,
    app_client,
    make_settings,
    open_bench,
    scripted_config,
    step,
)

pytestmark = pytest.mark.anyio

# Canaries by the kind their placeholder must name; none is a live credential.
CANARIES = {
    "aws_key": "AKIAZ7CANARY0AWS0KEY",
    "github_token": "ghp_CanaryGitHubToken0000000000000000000",
    "slack_token": "xoxb-1234567890-canaryslacktoken",
    "stripe_key": "sk_live_CanaryStripeKey000000000",
    "credential": "canary-dotenv-password-77",
    "basic_auth": "canary-url-pass-88",
    "private_key": "MIIEcanaryPrivateKeyBody99",
}
CONTEXT = f"""A committed .env file:
DATABASE_PASSWORD={CANARIES["credential"]}
AWS_ACCESS_KEY_ID={CANARIES["aws_key"]}
SLACK={CANARIES["slack_token"]}
replica: postgres://admin:{CANARIES["basic_auth"]}@db.internal:5432/app
-----BEGIN RSA PRIVATE KEY-----
{CANARIES["private_key"]}
-----END RSA PRIVATE KEY-----
"""
ACTION = {
    "tool": "deploy",
    "arguments": {
        "service": "billing",
        "env": {"GITHUB_TOKEN": CANARIES["github_token"], "STRIPE": CANARIES["stripe_key"]},
    },
}


def _request(**fields: Any) -> dict[str, Any]:
    return {
        "question": f"Deploy billing with key {CANARIES['aws_key']}?",
        "context": CONTEXT,
        "action": ACTION,
        **fields,
    }


def _leaks(text_: str) -> list[str]:
    return [kind for kind, value in CANARIES.items() if value in text_]


def config(**categories: dict[str, Any]) -> Any:
    return scripted_config(
        jurors={"alpha": [step("approve")], "bravo": [step("approve")]},
        max_rounds=1,
        categories=categories,
    )


async def _database_text(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = []
            for table in ("verdicts", "model_calls"):
                result = await connection.execute(text(f"SELECT * FROM {table}"))
                rows += [json.dumps(list(row), default=str) for row in result]
    finally:
        await engine.dispose()
    return "\n".join(rows)


def test_every_kind_is_replaced_by_its_placeholder() -> None:
    redaction = redact_text(CONTEXT)

    assert _leaks(redaction.text) == []
    assert redaction.found == {"credential", "aws_key", "slack_token", "basic_auth", "private_key"}
    assert "[REDACTED:private_key]" in redaction.text
    assert "DATABASE_PASSWORD=[REDACTED:credential]" in redaction.text


def test_redaction_is_idempotent_and_reads_its_kinds_back() -> None:
    screened = screen(VerdictRequest.model_validate(_request()), CategoryPolicy())

    assert screen(screened, CategoryPolicy()) == screened
    assert redacted_kinds(screened) == sorted(CANARIES)
    assert screened.action is not None
    assert screened.action.arguments["service"] == "billing"


def test_plain_material_is_left_alone() -> None:
    diff = (
        "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39\n+ timeout = 30\n+ password_min_length: 12"
    )

    assert redact_text(diff).text == diff
    assert redact_text(diff).found == frozenset()


def test_a_refusing_category_names_kinds_and_fields_never_values() -> None:
    request = VerdictRequest.model_validate(_request())

    with pytest.raises(SecretInInputError) as raised:
        screen(request, CategoryPolicy(secrets="refuse"))

    body = raised.value.body()
    assert body["error"] == "secret_in_input"
    assert body["fields"] == ["action", "context", "question"]
    assert body["kinds"] == sorted(CANARIES)
    assert _leaks(json.dumps(body)) == []


async def test_no_canary_reaches_a_prompt_the_database_logs_or_metrics(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = config()
    hub = RecordingHub(cfg)
    async with open_bench(database_url, cfg, hub=hub) as bench:
        verdict = await bench.service.decide(VerdictRequest.model_validate(_request()))

    prompts = "\n".join(m.content for _, r in hub.requests for m in r.messages)
    assert "[REDACTED:github_token]" in prompts
    assert "[REDACTED:aws_key]" in prompts
    assert _leaks(prompts) == []
    assert verdict.redacted == sorted(CANARIES)
    assert _leaks(verdict.model_dump_json()) == []
    assert _leaks(await _database_text(database_url)) == []
    assert _leaks(caplog.text) == []
    assert _leaks(generate_latest().decode()) == []


async def test_no_canary_in_http_answers_or_error_bodies(sqlite_database: str) -> None:
    cfg = config(finance={"secrets": "refuse"})
    async with app_client(make_settings(sqlite_database), cfg) as client:
        answered = await client.post("/verdict", json=_request())
        fetched = await client.get(f"/verdicts/{answered.json()['id']}")
        refused = await client.post("/verdict", json=_request(category="finance"))
        too_deep = await client.post(
            "/verdict",
            json=_request(action={"tool": "x", "arguments": _nested(CANARIES["aws_key"], 12)}),
        )
        wrong_type = await client.post(
            "/verdict", json=_request(action={"tool": CANARIES["github_token"], "arguments": []})
        )
        metrics = await client.get("/metrics")

    assert answered.status_code == 200, answered.text
    assert answered.json()["redacted"] == sorted(CANARIES)
    assert refused.status_code == 422
    assert refused.json()["error"] == "secret_in_input"
    assert too_deep.status_code == 422
    assert wrong_type.status_code == 422
    for response in (answered, fetched, refused, too_deep, wrong_type, metrics):
        assert _leaks(response.text) == [], response.text
    assert 'jury_redacted_secrets_total{kind="aws_key"}' in metrics.text


def _nested(leaf: str, depth: int) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {"k": value}
    return {"deep": value}


def test_the_action_schema_is_the_one_jurors_read() -> None:
    action = Action.model_validate(ACTION)

    assert json.loads(action.rendered()) == ACTION


async def test_responses_include_the_redacted_kinds_over_http_too(sqlite_database: str) -> None:
    async with app_client(make_settings(sqlite_database), config()) as client:
        clean = await client.post("/verdict", json={"question": "Proceed?"})

    assert clean.status_code == 200
    assert clean.json()["redacted"] == []


# --- the whole-text pre-scan (app.core.secrets) ---------------------------------------------


def _line_by_line(text: str) -> set[tuple[str, str]]:
    """Return every hit as the scan did before its pre-scan: every pattern on every line."""
    patterns = [(detector.kind, detector.line) for detector in secrets._DETECTOR_PATTERNS]
    return {
        hit for line in text.splitlines() for hit in secrets._hits(line, patterns, keywords=True)
    }


def test_detector_patterns_keep_the_pre_scan_exact() -> None:
    # A line's match is a match of the whole text only without these; see app.core.secrets.
    for detector in secrets._DETECTOR_PATTERNS:
        pattern = detector.line
        assert not re.search(r"\\A|\\Z|\(\?<[=!]", pattern.pattern), pattern.pattern


_PARSER = importlib.import_module("re._parser")  # CPython's: the pattern as the matcher reads it


def _required_literals(items: Any) -> list[str]:
    """Return the runs of literal characters of parsed ``items`` that every match holds."""
    runs: list[str] = []
    run = ""
    for op, value in items:
        if op is _PARSER.LITERAL:
            run += chr(value)
            continue
        runs, run = [*runs, run], ""
        # A group without flags of its own matches its items in sequence; anything else
        # (an alternation, a repetition, a class) may match without a given literal.
        if op is _PARSER.SUBPATTERN and not value[1] | value[2]:
            runs += _required_literals(value[3])
    return [literal for literal in [*runs, run] if literal]


def test_each_required_text_is_a_literal_every_match_holds() -> None:
    detectors = {detector.line.pattern: detector for detector in secrets._DETECTOR_PATTERNS}
    for source, required in secrets._REQUIRED_TEXT.items():
        detector = detectors.get(source)
        assert detector is not None, f"no detector pattern is {source!r}"
        assert detector.required == required
        parsed = _PARSER.parse(source, detector.line.flags)
        literals = _required_literals(parsed)
        if parsed.state.flags & re.IGNORECASE:
            # Tested against the lowered text: every literal ASCII, so that lowering folds it
            # as the pattern does.
            assert required == required.lower(), source
            assert required.isascii(), source
            literals = [literal.lower() for literal in literals if literal.isascii()]
        assert any(required in literal for literal in literals), source
    assert all(
        detector.required == secrets._REQUIRED_TEXT.get(detector.line.pattern, "")
        for detector in secrets._DETECTOR_PATTERNS
    )


def test_telegrams_pattern_is_the_one_pre_checked_for_digits_then_a_colon() -> None:
    checked = [d for d in secrets._DETECTOR_PATTERNS if d.digits_then_colon]
    assert [d.kind for d in checked] == ["telegram_token"]


@pytest.mark.parametrize(
    "text",
    [
        "bot 123456789:" + "A" * 35,
        "12345678:" + "b_-" * 12,
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668:" + "c" * 35,  # Arabic-Indic digits
        "1234567:" + "d" * 35,
        "def charge(customer, amount):\n    12345678 :" + "e" * 35,
    ],
)
def test_a_text_telegrams_pattern_matches_has_digits_then_a_colon(text: str) -> None:
    (detector,) = [d for d in secrets._DETECTOR_PATTERNS if d.digits_then_colon]
    matched = detector.whole.search(text) is not None
    assert secrets._has_digits_then_colon(text) is matched


def test_a_literal_in_an_alternation_repetition_or_flagged_group_is_not_required() -> None:
    assert _required_literals(_PARSER.parse("(?:ab|cd)x(yz)w")) == ["x", "yz", "w"]
    assert _required_literals(_PARSER.parse("(?:abc)?d+(?i:ef)")) == []


def test_every_keyword_shape_needs_a_keyword() -> None:
    for shape in secrets._KEYWORD_SHAPES:
        for pattern in shape:
            assert DENYLIST_REGEX.removesuffix(r"\w*") in pattern.pattern, pattern.pattern


SCANNED = [
    CONTEXT,
    CONTEXT.replace("\n", "\r\n"),
    "\n".join(CANARIES.values()),
    "x" + "\rAKC" + "a" * 12 + "\r",  # artifactory: starts a line after a bare carriage return
    'artifactory: "AP6' + "b" * 10 + '"\nmailchimp: ' + "0a" * 16 + "-us12\n",
    "AWS_SECRET_KEY = '" + "A" * 40 + "'\nhttps://HOOKS.slack.com/services/T0/B0/x1\n",
    "xOx" + "b-1234-abc\naw\u017f key: '" + "a" * 40 + "'\n",  # a long s: folded onto "s"
    "telegram: 123456789:" + "T" * 35 + "\n",
    'config:\n  password: "hunter2hunter2"\nsecret = "s3cr3t-value"\n',
    '"abcdefgh" == my_password\nPASSWORD="Upper-Case-Value"\n',
    f"token at the end {CANARIES['github_token']}\n{CANARIES['stripe_key']} at the start",
    "no secret here, only a commit 3f5e9a1c7b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f\n" * 3,
    "",
]


@pytest.mark.parametrize("text", SCANNED)
def test_the_pre_scan_finds_what_a_line_by_line_scan_finds(text: str) -> None:
    assert secrets.hits_in(text) == _line_by_line(text)


def test_every_keyword_holds_one_of_the_pre_checked_parts() -> None:
    for keyword in DENYLIST:
        literals = _required_literals(_PARSER.parse(keyword))
        assert any(part in literal for part in secrets._KEYWORD_PARTS for literal in literals)


def test_every_keyword_is_lowercase() -> None:
    # Lowering ASCII text before a case-sensitive search is IGNORECASE's answer only so.
    for keyword in DENYLIST:
        assert keyword == keyword.lower(), keyword


@pytest.mark.parametrize(
    "text",
    [
        "nothing to see",
        "API_KEY=1",
        "my Password is",
        "PaSsWd",
        "db-pass",
        "ContraseÑa: x",
        "ap\u0131_key",  # a dotless i: IGNORECASE folds it onto "i", str.lower does not
        "\u017fecret",  # a long s: likewise onto "s"
        "",
    ],
)
def test_the_keyword_check_answers_as_the_case_insensitive_search(text: str) -> None:
    expected = secrets._ANY_KEYWORD.search(text) is not None
    assert secrets._has_keyword(text, secrets._lowered_ascii(text)) is expected
