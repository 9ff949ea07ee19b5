"""What one call of a model costs, for the sequential mode's order (cheapest first).

Only the order matters, so one unit serves every model: USD per million tokens, the mean of
the input and output prices. A configured ``cost`` wins; a model Jury serves itself, a
scripted, recorded or self-hosted one costs 0 (nothing Jury pays per call); a hosted model
takes litellm's list price, and one litellm does not price goes after every priced one.
"""

from __future__ import annotations

import math

from app.core.config import ModelSpec


def call_cost(spec: ModelSpec) -> float:
    """Return the cost of one call of ``spec`` (USD per million tokens; inf: unknown)."""
    if spec.cost is not None:
        return spec.cost
    if not spec.is_hosted:
        return 0.0
    # Imported lazily, as the hub does: litellm is heavy, and only a hosted model needs it.
    from app.providers.litellm_provider import known_price_per_mtok

    price = known_price_per_mtok(spec.model)
    return price if price is not None else math.inf
