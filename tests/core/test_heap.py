"""The server freezes its start-up heap so that full collections stop walking it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.core.heap import YOUNG_THRESHOLD
from app.http.app import create_app
from tests.builders import make_settings, serving


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """Give the rest of the test session the collector as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.anyio
@pytest.mark.usefixtures("restored_collector")
async def test_serving_freezes_the_startup_heap(sqlite_database: str) -> None:
    gc.unfreeze()
    async with serving(create_app(make_settings(sqlite_database))) as client:
        frozen = gc.get_freeze_count()
        young, _, _ = gc.get_threshold()
        response = await client.get("/healthz")

    assert response.status_code == 200
    # The app, its runtime and every imported module: far more than a test's own objects.
    assert frozen > 100_000
    assert young == YOUNG_THRESHOLD
