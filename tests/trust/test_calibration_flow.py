"""Calibrated confidence: fitted from outcomes, approved like weights, then applied.

Two panels differ only in their judge: ``judge`` says reject with confidence 0.6, ``judge2``
with 0.9. Outcomes make the first right half the time and the second 9 times in 10, so the
isotonic map is 0.6 -> 0.5 and 0.9 -> 0.9.
"""

from __future__ import annotations

import pytest

from .harness import (
    REVIEWER,
    Served,
    ask,
    clone_verdicts,
    panel_config,
    propose,
    record_outcomes,
    serve,
)

pytestmark = pytest.mark.anyio

LOOPBACK = "http://127.0.0.1:9/v1"


async def _seed(served: Served) -> None:
    for panel, right in (("default", 10), ("second", 18)):
        template = await ask(served.client, "deploy", panel=panel)
        ids = [template["id"], *await clone_verdicts(served, template, category="deploy", n=19)]
        outcomes = ["reject"] * right + ["approve"] * (20 - right)
        await record_outcomes(served, dict(zip(ids, outcomes, strict=True)))


async def test_an_approved_calibration_map_calibrates_the_confidence(database_url: str) -> None:
    config = panel_config(judge_confidence=0.6, second_judge_confidence=0.9)
    async with serve(database_url, config) as served:
        client = served.client
        await _seed(served)
        before = await ask(client, "deploy")
        assert (before["confidence"], before["confidence_calibrated"]) == (0.6, False)

        proposal = await propose(client, kind="calibration")
        assert (proposal["kind"], proposal["weights"]) == ("calibration", {})
        deploy = proposal["calibration"]["deploy"]
        assert deploy["x"] == [0.6, 0.9]
        assert deploy["y"] == pytest.approx([0.5, 0.9])
        replay = proposal["replay"]
        assert replay["ece_proposed"] < replay["ece_active"]
        assert replay["flipped"] == []
        assert proposal["calibration_models"] == {"judge": "scripted", "judge2": "scripted"}
        approved = await client.post(f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER)
        assert approved.json()["version"] == 1

        after = await ask(client, "deploy")
        assert after["confidence"] == pytest.approx(0.5)
        assert (after["raw_confidence"], after["confidence_calibrated"]) == (0.6, True)
        # The judge's own confidence stays in the transcript, and the policy reads the
        # calibrated one: 0.5 is below the default escalation threshold of 0.6.
        assert after["judge"]["confidence"] == 0.6
        assert "low_confidence" in after["escalate_reasons"]
        stored = (await client.get(f"/verdicts/{after['id']}")).json()
        assert (stored["confidence"], stored["raw_confidence"]) == (after["confidence"], 0.6)
        # Another category falls back to the all-categories map.
        other = await ask(client, "finance", panel="second")
        assert (other["confidence"], other["confidence_calibrated"]) == (
            pytest.approx(0.9),
            True,
        )


async def test_a_weights_approval_keeps_the_active_calibration(sqlite_database: str) -> None:
    config = panel_config(judge_confidence=0.6, second_judge_confidence=0.9)
    async with serve(sqlite_database, config) as served:
        client = served.client
        await _seed(served)
        calibration = await propose(client, kind="calibration")
        await client.post(f"/trust/proposals/{calibration['id']}/approve", json=REVIEWER)
        weights = await propose(client)
        approved = await client.post(f"/trust/proposals/{weights['id']}/approve", json=REVIEWER)
        assert approved.json()["version"] == 2
        active = (await client.get("/trust/weights")).json()
        assert active["version"] == 2
        assert sorted(active["calibration"]) == ["*", "deploy"]
        assert active["weights"]["deploy"]
        assert (await ask(client, "deploy"))["confidence"] == pytest.approx(0.5)


async def test_a_map_fitted_for_another_judge_model_is_not_applied(sqlite_database: str) -> None:
    config = panel_config(judge_confidence=0.6, second_judge_confidence=0.9)
    async with serve(sqlite_database, config) as served:
        await _seed(served)
        proposal = await propose(served.client, kind="calibration")
        await served.client.post(f"/trust/proposals/{proposal['id']}/approve", json=REVIEWER)
    # The same judge name now runs another model (its api_base makes it a local server).
    changed = panel_config(
        judge_confidence=0.6,
        second_judge_confidence=0.9,
        judge_overrides={
            "judge2": {"model": "openai/judge-v2", "api_base": LOOPBACK, "script": None}
        },
    )
    async with serve(sqlite_database, changed) as served:
        source = served.runtime.trust
        specs = {spec.name: spec for spec in changed.judges}
        assert await source.calibration("deploy", version=1, judge=specs["judge"]) is not None
        assert await source.calibration("deploy", version=1, judge=specs["judge2"]) is None
