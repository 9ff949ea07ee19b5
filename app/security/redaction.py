"""Secrets kept out of every prompt: found by detect-secrets' detectors, replaced by placeholders.

Before a request is recorded or deliberated, its ``question``, ``context`` and ``action`` are
scanned, and every hit becomes a typed placeholder, ``[REDACTED:aws_key]``: the prompts, the
stored request and the stored verdict hold the placeholder, never the value. A category may refuse
such a request instead (``secrets: refuse`` in its policy: 422 ``secret_in_input``).

The detectors (detect-secrets', and why those) are ``app.core.secrets``'s; this module applies
them to a verdict request.

Redaction is idempotent: a redacted text redacts to itself, and the kinds are read back from its
placeholders, so the worker that deliberates a queued verdict reports what the intake replaced.
"""

from __future__ import annotations

import json
from typing import Any

from app.core import metrics
from app.core.config import CategoryPolicy
from app.core.errors import SecretInInputError
from app.core.secrets import KINDS, PLACEHOLDER, hits_in, redact_text, replace_hits
from app.deliberation.schemas import Action, VerdictRequest


def _redact_json(value: Any, hits: set[tuple[str, str]], found: set[str]) -> Any:
    if isinstance(value, str):
        own = redact_text(value)
        redaction = replace_hits(own.text, hits)
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
    hits = hits_in(rendered)
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
    kinds = {kind for text in texts for kind in PLACEHOLDER.findall(text) if kind in KINDS}
    return sorted(kinds)
