"""Scoring primitives: Beta posterior for an accuracy, ECE and Brier score for confidences."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

ECE_BINS = 10
CREDIBLE_LEVEL = 0.95


class BetaAccuracy(BaseModel):
    """An accuracy as a Beta posterior: counts, posterior mean and equal-tailed interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    successes: int = Field(ge=0)
    n: int = Field(ge=0)
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)
    mean: float
    lower: float
    upper: float
    level: float = CREDIBLE_LEVEL

    @property
    def observed(self) -> float | None:
        """Return the raw success rate, or None without observations."""
        return self.successes / self.n if self.n else None


class Calibration(BaseModel):
    """How well stated confidence matched correctness: ECE (10 equal-width bins) and Brier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(ge=0)
    ece: float | None
    brier: float | None
    mean_confidence: float | None
    accuracy: float | None


def beta_posterior(
    successes: int,
    n: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    level: float = CREDIBLE_LEVEL,
) -> BetaAccuracy:
    """Return the Beta posterior of an accuracy after `successes` out of `n` trials."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    alpha, beta = prior[0] + successes, prior[1] + (n - successes)
    tail = (1.0 - level) / 2.0
    # Imported here: scipy.stats costs seconds at import, and only statistics need it.
    from scipy.special import betaincinv

    lower = float(betaincinv(alpha, beta, tail))
    upper = float(betaincinv(alpha, beta, 1.0 - tail))
    mean = alpha / (alpha + beta)
    return BetaAccuracy(
        successes=successes,
        n=n,
        alpha=alpha,
        beta=beta,
        mean=mean,
        lower=lower,
        upper=upper,
        level=level,
    )


def accuracy_of(hits: Sequence[bool]) -> BetaAccuracy:
    """Return the Beta(1,1) posterior accuracy of a sequence of hit/miss outcomes."""
    return beta_posterior(sum(hits), len(hits))


def expected_calibration_error(
    pairs: Sequence[tuple[float, bool]], *, bins: int = ECE_BINS
) -> float:
    """Return the ECE: bin-size weighted mean |accuracy - mean confidence| over equal-width bins."""
    if not pairs:
        raise ValueError("ECE of an empty sample is undefined")
    sums: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(bins)]  # count, conf, hits
    for confidence, hit in pairs:
        # Confidence 1.0 belongs to the last bin, not to a bin of its own.
        index = min(int(confidence * bins), bins - 1)
        sums[index][0] += 1
        sums[index][1] += confidence
        sums[index][2] += float(hit)
    gap = sum(abs(hits - conf) for count, conf, hits in sums if count)
    return gap / len(pairs)


def brier_score(pairs: Sequence[tuple[float, bool]]) -> float:
    """Return the mean squared difference between confidence and the 0/1 outcome."""
    if not pairs:
        raise ValueError("Brier score of an empty sample is undefined")
    return sum((conf - float(hit)) ** 2 for conf, hit in pairs) / len(pairs)


def calibration_of(pairs: Sequence[tuple[float, bool]]) -> Calibration:
    """Return ECE and Brier of (confidence, correct) pairs; None fields when empty."""
    if not pairs:
        return Calibration(n=0, ece=None, brier=None, mean_confidence=None, accuracy=None)
    return Calibration(
        n=len(pairs),
        ece=expected_calibration_error(pairs),
        brier=brier_score(pairs),
        mean_confidence=sum(conf for conf, _ in pairs) / len(pairs),
        accuracy=sum(hit for _, hit in pairs) / len(pairs),
    )


# Wilson's interval is for shares of observed counts (a replay, a week's verdicts); the Beta
# posterior above is for accuracies that feed a weight.
Z95 = 1.959963984540054  # two-sided 95% standard normal quantile


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for successes out of n trials, n > 0."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p, z2 = successes / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


class ReliabilityBin(BaseModel):
    """One equal-width confidence bin: how many verdicts, their mean confidence, how many right."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lower: float
    upper: float
    n: int
    hits: int
    mean_confidence: float | None


def reliability_bins(
    pairs: Sequence[tuple[float, bool]], *, bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """Return the reliability diagram of (confidence, correct) pairs, the ECE's own bins."""
    sums: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(bins)]  # count, conf, hits
    for confidence, hit in pairs:
        index = min(int(confidence * bins), bins - 1)
        sums[index][0] += 1
        sums[index][1] += confidence
        sums[index][2] += float(hit)
    return [
        ReliabilityBin(
            lower=i / bins,
            upper=(i + 1) / bins,
            n=int(count),
            hits=int(hits),
            mean_confidence=conf / count if count else None,
        )
        for i, (count, conf, hits) in enumerate(sums)
    ]
