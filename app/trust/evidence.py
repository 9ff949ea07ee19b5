"""Lay out a proposal's stored evidence for a page: plain facts and tables of text.

Evidence differs by kind (weights cells, agreement-only cells, calibration fits, a rollback
decision) and is stored as JSON, so this reads its shape rather than its kind: scalars become
facts, a list of records or a mapping of records becomes a table. A Beta posterior accuracy is
shown as its mean, interval and counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of text cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """A proposal's evidence as facts (label, text) and tables."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def label(key: str) -> str:
    """Return a stored key as a heading: ``min_evidence`` -> ``min evidence``."""
    return key.replace("_", " ")


def text(value: Any) -> str:
    """Return one stored value as short text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):
        if {"mean", "lower", "upper", "successes", "n"} <= value.keys():
            return (
                f"{value['mean']:.3f} [{value['lower']:.3f}, {value['upper']:.3f}] "
                f"({value['successes']}/{value['n']})"
            )
        return "; ".join(f"{label(str(k))} {text(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(text(item) for item in value) or "none"
    return str(value)


def _records(title: str, records: Sequence[Mapping[str, Any]]) -> Table:
    columns = list(dict.fromkeys(name for record in records for name in record))
    rows = [[text(record.get(name)) for name in columns] for record in records]
    return Table(title=label(title), columns=[label(name) for name in columns], rows=rows)


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def _is_keyed_records(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value.values())
    )


def evidence_view(evidence: Mapping[str, Any]) -> EvidenceView:
    """Split stored evidence into facts and tables, in its stored order."""
    view = EvidenceView()
    for key, value in evidence.items():
        if _is_records(value):
            view.tables.append(_records(key, value))
        elif _is_keyed_records(value):
            keyed = [{key: name, **record} for name, record in value.items()]
            view.tables.append(_records(key, keyed))
        else:
            view.facts.append((label(key), text(value)))
    return view
