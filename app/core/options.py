"""Answer options: the labels a verdict must choose among."""

from __future__ import annotations

from collections.abc import Sequence


def validate_options(value: Sequence[str]) -> list[str]:
    """Return the stripped option labels, or raise ``ValueError`` saying what is wrong."""
    labels = [label.strip() for label in value]
    if not 2 <= len(labels) <= 10:
        raise ValueError("options must hold 2 to 10 labels")
    if any(not label or len(label) > 200 for label in labels):
        raise ValueError("each option must be 1 to 200 characters")
    if len({label.casefold() for label in labels}) != len(labels):
        raise ValueError("options must be distinct")
    return labels
