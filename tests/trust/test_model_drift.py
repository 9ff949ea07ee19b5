"""Drift guard: weights learned for a juror's old model do not apply to its new model."""

from __future__ import annotations

import logging

import pytest

from .harness import approved_version, panel_config, propose, serve

pytestmark = pytest.mark.anyio

NEW_ALPHA = {
    "alpha": {"model": "openai/alpha-v2", "api_base": "http://127.0.0.1:9/v1", "script": None}
}


async def test_a_changed_model_drops_its_weights(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(database_url) as served:
        await approved_version(served)
        learned = (await served.client.get("/trust/weights")).json()["weights"]
        assert "alpha" in learned["deploy"]

    caplog.set_level(logging.WARNING, logger="jury.trust")
    async with serve(database_url, panel_config(juror_overrides=NEW_ALPHA)) as served:
        # Reported at start-up...
        warning = next(r for r in caplog.records if r.name == "jury.trust")
        assert "alpha" in warning.getMessage()
        assert "openai/alpha-v2" in warning.getMessage()
        # ...in the weights in force...
        active = (await served.client.get("/trust/weights")).json()
        assert active["version"] == 1
        assert all("alpha" not in weights for weights in active["weights"].values())
        assert active["weights"]["deploy"]["bravo"] == learned["deploy"]["bravo"]
        [dropped] = active["drift"]
        assert (dropped["juror"], dropped["reason"]) == ("alpha", "model_changed")
        assert (dropped["recorded_model"], dropped["current_model"]) == (
            "scripted",
            "openai/alpha-v2",
        )
        # ...in what a verdict would use (neutral for alpha)...
        version, weights = await served.runtime.trust.active("deploy")
        assert (version, "alpha" in weights) == (1, False)
        # ...and in the statistics, whose alpha cells belong to the old model.
        stats = (await served.client.get("/trust/stats")).json()
        assert [d["juror"] for d in stats["drift"]] == ["alpha"]
        alpha_cells = [c for c in stats["jurors"] if c["juror"] == "alpha"]
        assert alpha_cells
        assert not any(c["current_model"] for c in alpha_cells)
        # A new proposal does not learn the new model's weight from the old model's record.
        proposal = await propose(served.client)
        assert {cell["juror"] for cell in proposal["evidence"]["cells"]} == {"bravo", "charlie"}
        assert all("alpha" not in weights for weights in proposal["weights"].values())
