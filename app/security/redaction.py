"""Secrets kept out of every prompt: found by detect-secrets' detectors, replaced by placeholders.

Before a request is recorded or deliberated, its ``question``, ``context`` and ``action`` are
scanned, and every hit becomes a typed placeholder, ``[REDACTED:aws_key]``: the prompts, the
stored request and the stored verdict hold the placeholder, never the value. A category may refuse
such a request instead (``secrets: refuse`` in its policy: 422 ``secret_in_input``).

Why detect-secrets: it is Yelp's maintained scanner, used in pre-commit hooks across the industry,
and its detectors are precise patterns for named credential formats (AWS, GitHub, GitLab, Slack,
Stripe, OpenAI, JWTs, private keys, credentials in URLs, ...) plus a keyword detector for
``password = ...``-style assignments, the shape of a committed ``.env`` file. Its high-entropy
detectors are left out: they flag commit hashes and checksums, which jurors need to read in a diff.

Redaction is idempotent: a redacted text redacts to itself, and the kinds are read back from its
placeholders, so the worker that deliberates a queued verdict reports what the intake replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import (
    CONFIG_DENYLIST_REGEX_TO_GROUP,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    KeywordDetector,
)
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from app.core import metrics
from app.core.config import CategoryPolicy
from app.core.errors import SecretInInputError
from app.deliberation.schemas import Action, VerdictRequest

# Each detector under the kind its placeholder names.
DETECTORS: tuple[tuple[str, RegexBasedDetector], ...] = (
    ("aws_key", AWSKeyDetector()),
    ("artifactory_token", ArtifactoryDetector()),
    ("azure_storage_key", AzureStorageKeyDetector()),
    ("basic_auth", BasicAuthDetector()),
    ("discord_token", DiscordBotTokenDetector()),
    ("github_token", GitHubTokenDetector()),
    ("gitlab_token", GitLabTokenDetector()),
    ("jwt", JwtTokenDetector()),
    ("mailchimp_key", MailchimpDetector()),
    ("npm_token", NpmDetector()),
    ("openai_key", OpenAIDetector()),
    ("pypi_token", PypiTokenDetector()),
    ("sendgrid_key", SendGridDetector()),
    ("slack_token", SlackDetector()),
    ("square_token", SquareOAuthDetector()),
    ("stripe_key", StripeDetector()),
    ("telegram_token", TelegramBotTokenDetector()),
    ("twilio_key", TwilioKeyDetector()),
)
KEYWORD_KIND = "credential"
PRIVATE_KEY_KIND = "private_key"
KINDS = frozenset({kind for kind, _ in DETECTORS} | {KEYWORD_KIND, PRIVATE_KEY_KIND})

_KEYWORD = KeywordDetector()
# Quoted assignments (code, JSON) and unquoted ones (.env, YAML, INI).
_KEYWORD_SHAPES = (QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, CONFIG_DENYLIST_REGEX_TO_GROUP)
# detect-secrets matches a private key by its header line; the whole block must go.
_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_PLACEHOLDER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")
# Shorter hits are too common to be credentials ('password: "none"').
MIN_SECRET_CHARS = 6


def placeholder(kind: str) -> str:
    """Return the text that stands in for a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True, slots=True)
class Redaction:
    """A text with its secrets replaced, and the kinds found in it."""

    text: str
    found: frozenset[str]


def redact_text(text: str) -> Redaction:
    """Replace every secret in ``text`` by its placeholder; ``found``: the kinds replaced now."""
    text, blocks = _KEY_BLOCK.subn(placeholder(PRIVATE_KEY_KIND), text)
    redaction = _replace(text, _hits_in(text))
    if blocks:
        return Redaction(redaction.text, redaction.found | {PRIVATE_KEY_KIND})
    return redaction


def _hits_in(text: str) -> set[tuple[str, str]]:
    """Return (kind, value) for each secret detect-secrets finds, line by line."""
    return {hit for line in text.splitlines() for hit in _hits(line)}


def _replace(text: str, hits: set[tuple[str, str]]) -> Redaction:
    found: set[str] = set()
    # Longest first: a secret that contains another is replaced whole.
    for kind, value in sorted(hits, key=lambda hit: (-len(hit[1]), hit)):
        if value in text:
            text = text.replace(value, placeholder(kind))
            found.add(kind)
    return Redaction(text, frozenset(found))


def _hits(line: str) -> Iterator[tuple[str, str]]:
    for kind, detector in DETECTORS:
        # The whole match: some patterns capture only a prefix ('ghp' of a GitHub token).
        for pattern in detector.denylist:
            for match in pattern.finditer(line):
                yield from _kept(kind, match.group(0))
    for shape in _KEYWORD_SHAPES:
        for value in _KEYWORD.analyze_string(line, denylist_regex_to_group=shape):
            yield from _kept(KEYWORD_KIND, value)


def _kept(kind: str, value: str) -> Iterator[tuple[str, str]]:
    # Unquoted shapes may take the quotes along; the secret is what they enclose.
    value = value.strip("\"'")
    # A placeholder already stands where a secret was: leave it (and its kind) as it is.
    if len(value) >= MIN_SECRET_CHARS and "[REDACTED:" not in value:
        yield kind, value


def _strings(value: Any) -> Iterator[str]:
    """Yield every string inside a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


def _redact_json(value: Any, hits: set[tuple[str, str]], found: set[str]) -> Any:
    if isinstance(value, str):
        own = redact_text(value)
        redaction = _replace(own.text, hits)
        found |= own.found | redaction.found
        return redaction.text
    if isinstance(value, list):
        return [_redact_json(item, hits, found) for item in value]
    if isinstance(value, dict):
        return {
            _redact_json(key, hits, found): _redact_json(item, hits, found)
            for key, item in value.items()
        }
    return value


def redact_action(action: Action) -> tuple[Action, frozenset[str]]:
    """Redact an action's tool and every string in its arguments.

    The arguments are also scanned in their rendered form, one key per line, so that the
    keyword detector sees ``"password": "hunter2"`` as the assignment it is.
    """
    rendered = json.dumps(action.arguments, indent=1, ensure_ascii=False, default=str)
    hits = _hits_in(rendered)
    found: set[str] = set()
    arguments = _redact_json(action.arguments, hits, found)
    tool = _redact_json(action.tool, hits, found)
    return Action(tool=tool, arguments=arguments), frozenset(found)


def screen(request: VerdictRequest, policy: CategoryPolicy) -> VerdictRequest:
    """Return ``request`` with its secrets redacted, or refuse it if the category says so."""
    update: dict[str, Any] = {}
    found: dict[str, frozenset[str]] = {}
    for field in ("question", "context"):
        text = getattr(request, field)
        if text:
            redaction = redact_text(text)
            if redaction.found:
                update[field], found[field] = redaction.text, redaction.found
    if request.action is not None:
        action, kinds = redact_action(request.action)
        if kinds:
            update["action"], found["action"] = action, kinds
    if not found:
        return request
    kinds_found = sorted(set().union(*found.values()))
    for kind in kinds_found:
        metrics.REDACTED_SECRETS.labels(kind).inc()
    if policy.secrets == "refuse":
        fields = sorted(found)
        raise SecretInInputError(
            f"{', '.join(fields)} hold(s) a secret ({', '.join(kinds_found)}); this category "
            "refuses requests with secrets instead of redacting them",
            field=fields[0],
            fields=fields,
            kinds=kinds_found,
        )
    return request.model_copy(update=update)


def redacted_kinds(request: VerdictRequest) -> list[str]:
    """Return the kinds of secret whose placeholders stand in the (screened) request."""
    texts = [request.question, request.context or ""]
    if request.action is not None:
        texts.append(json.dumps(request.action.model_dump(mode="json"), ensure_ascii=False))
    kinds = {kind for text in texts for kind in _PLACEHOLDER.findall(text) if kind in KINDS}
    return sorted(kinds)
