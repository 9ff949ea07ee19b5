"""``jury trust …``: the same workflow from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import yaml
from typer.testing import CliRunner

from app.cli.main import app

from .harness import SMALL_PLAN, panel_config, seed, serve


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "jury.yaml"
    raw = panel_config().model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


async def _seed(url: str) -> list[str]:
    async with serve(url) as served:
        ids = await seed(served, SMALL_PLAN)
    return ids["deploy"]


class Jury:
    """Invoke ``jury`` on one database and config."""

    def __init__(self, url: str, config: Path) -> None:
        self.runner = CliRunner()
        self.env = {"JURY_DATABASE_URL": url, "JURY_AUTO_MIGRATE": "false", "COLUMNS": "200"}
        self.config = str(config)

    def __call__(self, *args: str, code: int = 0) -> str:
        result = self.runner.invoke(app, ["trust", *args, "--config", self.config], env=self.env)
        assert result.exit_code == code, result.output
        return result.output


def test_review_cycle_from_the_command_line(sqlite_database: str, tmp_path: Path) -> None:
    jury = Jury(sqlite_database, _write_config(tmp_path))
    verdict_ids = anyio.run(_seed, sqlite_database)

    stats = jury("stats")
    assert "Trust statistics from 40 verdicts with outcomes; weights version neutral" in stats
    assert "alpha" in stats
    assert "weighted_vote" in stats

    proposed = jury("propose", "--min-evidence", "10", "--own-rule-p", "1", "--by", "cli-bot")
    assert "Proposal 1 weights (proposed) by cli-bot" in proposed
    flat = " ".join(proposed.split())  # rich wraps long lines at the terminal's width
    assert "replay on 40 verdicts with outcomes: " in flat
    assert "accuracy active 0.375 [0.24, 0.53] (15/40) → " in flat
    assert "proposed 0.525 [0.37, 0.67] (21/40); 40 would flip" in flat
    assert "cli-bot" in jury("proposals")
    shown = json.loads(jury("show", "1", "--json"))
    assert (shown["id"], shown["status"]) == (1, "proposed")
    # The review page's order: what changes, the replay, how to decide, then the flips.
    text = " ".join(jury("show", "1", "--flips", "3").split())
    marks = ["What changes", "replay on 40", "decide: jury trust approve 1"]
    marks.append("Flipped verdicts (40)")
    at = [text.index(mark) for mark in marks]
    assert at == sorted(at)
    assert "Go ahead with this deploy change?" in text
    assert "… and 37 more: jury trust show 1 --flips 40" in text

    assert "version 1 is active" in jury("approve", "1", "--reviewer", "rita", "--comment", "ok")
    refused = jury("approve", "1", "--reviewer", "rita", "--comment", "again", code=2)
    assert "proposal 1 is approved, not proposed" in refused
    assert "weights version 1" in jury("weights")
    assert "neutral" in jury("rollback", "0", "--reviewer", "rita", "--comment", "undo")

    audit = jury("audit")
    assert "weights.rolled_back" in audit
    assert "proposal.approved" in audit
    duplicate = jury("outcome", verdict_ids[0], "approve", code=2)
    assert "already has an outcome" in duplicate
    corrected = jury("outcome", verdict_ids[0], "reject", "--corrects", "--by", "rita")
    assert "revision 2" in corrected
    assert "no rollback proposed" in jury("check")
