"""A deterministic train/test split of dataset records, so weights are scored on unseen items.

The split is over record ids (both presentation orders of a pairwise record fall on the same
side) and depends only on the ids, the seed and the ratio: the same call always gives the same
halves, whatever order the file lists its records in.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

Split = Literal["train", "test"]

DEFAULT_SPLIT_SEED = 0
DEFAULT_TRAIN_RATIO = 0.5


def split_ids(
    ids: Iterable[str], *, seed: int = DEFAULT_SPLIT_SEED, ratio: float = DEFAULT_TRAIN_RATIO
) -> tuple[frozenset[str], frozenset[str]]:
    """Return (train, test) record ids: ``ratio`` of them (rounded) go to train."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"the train ratio must lie strictly between 0 and 1, got {ratio}")
    ordered = sorted(set(ids))
    random.Random(seed).shuffle(ordered)
    cut = round(len(ordered) * ratio)
    return frozenset(ordered[:cut]), frozenset(ordered[cut:])


def side_of(
    ids: Iterable[str],
    split: Split,
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    ratio: float = DEFAULT_TRAIN_RATIO,
) -> frozenset[str]:
    """Return the record ids on one side of the split."""
    train, test = split_ids(ids, seed=seed, ratio=ratio)
    return train if split == "train" else test
