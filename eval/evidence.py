"""The evidence the offline panel ships with: its committed dev-set reports, read back.

``eval/reports/local-panel/<dataset>/report.json`` are real runs of ``config/jury.yaml``'s
default panel (``jury eval run``). A fresh install has no verdicts with outcomes, so without
these the panel's weakness would be invisible until a user had recorded dozens of outcomes;
``jury trust stats`` shows them and ``jury ask`` sums them up in one line.

The evidence applies only to a panel of local jurors whose names are exactly the ones the
reports scored: a user who edits the panel gets no stale numbers attributed to it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.core.config import JuryConfig

REPORTS_DIR = Path(__file__).resolve().parent / "reports" / "local-panel"


class Score(BaseModel):
    """How often one decider was right on one dataset."""

    model_config = ConfigDict(frozen=True)

    successes: int = Field(ge=0)
    n: int = Field(ge=0)

    @property
    def rate(self) -> float | None:
        """Return the share right, or None with no items."""
        return self.successes / self.n if self.n else None

    def render(self) -> str:
        """Render as 'hits/n rate'."""
        rate = self.rate
        return f"{self.successes}/{self.n} ({rate:.2f})" if rate is not None else "-"


class DatasetEvidence(BaseModel):
    """One committed dev-set run of the panel: the verdict, the baselines, each juror."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    report: Path
    judge: Score
    round1_majority: Score
    final_majority: Score
    jurors: dict[str, Score] = Field(description="Each juror's round-1 accuracy.")
    latency_p50_s: float | None = None

    @property
    def title(self) -> str:
        """Return the dataset's file name without its extension."""
        return Path(self.dataset).stem


def _score(raw: dict[str, object]) -> Score:
    return Score.model_validate({"successes": raw["successes"], "n": raw["n"]})


def read_report(path: Path) -> DatasetEvidence:
    """Read the parts of one ``report.json`` that the CLI shows."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    accuracy = raw["accuracy"]
    latency = raw.get("usage", {}).get("latency_ms", {}).get("p50")
    return DatasetEvidence(
        dataset=str(raw.get("meta", {}).get("dataset") or path.parent.name),
        report=path,
        judge=_score(accuracy["judge"]),
        round1_majority=_score(accuracy["round1_majority"]),
        final_majority=_score(accuracy["final_majority"]),
        jurors={name: _score(scores["round1"]) for name, scores in accuracy["jurors"].items()},
        latency_p50_s=latency / 1000 if latency is not None else None,
    )


def shipped_evidence(
    config: JuryConfig, *, panel: str | None = None, reports_dir: Path = REPORTS_DIR
) -> list[DatasetEvidence]:
    """Return the committed runs that scored exactly this panel's local jurors (or none)."""
    chosen = config.panels[panel or config.default_panel]
    if not all(config.juror(name).local is not None for name in chosen.jurors):
        return []
    runs = [read_report(path) for path in sorted(reports_dir.glob("*/report.json"))]
    return [run for run in runs if set(run.jurors) == set(chosen.jurors)]


def per_dataset(evidence: list[DatasetEvidence]) -> list[DatasetEvidence]:
    """Return one run per dataset: the one that scored the most items (the first on a tie).

    Several folders may hold runs of one dataset (``truthfulqa/`` with 12 items on the old
    runtime, ``truthfulqa-20/`` with 20): a one-line summary states each dataset once.
    """
    chosen: dict[str, DatasetEvidence] = {}
    for run in evidence:
        known = chosen.get(run.title)
        if known is None or run.judge.n > known.judge.n:
            chosen[run.title] = run
    return list(chosen.values())


def low_trust_note(evidence: list[DatasetEvidence]) -> str | None:
    """Sum the evidence up in one line: how often this panel's verdict was right, per dataset."""
    if not evidence:
        return None
    scores = ", ".join(f"{run.judge.render()} on {run.title}" for run in per_dataset(evidence))
    return (
        f"Low trust: this offline panel of small models is weak; on its dev sets the verdict "
        f"was right {scores} (`jury trust stats` has the per-juror numbers)."
    )
