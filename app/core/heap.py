"""The garbage collector, tuned for a long-running server with a large start-up heap.

Importing litellm, SQLAlchemy, FastAPI and pydantic leaves over a million objects that live as
long as the process. CPython's full (generation 2) collection walks all of them: measured in
`jury bench` at 50 verdicts/s, nine such collections of 175-194 ms each in 15 s, every one a
stall of the event loop and the whole of the overhead's p99. Freezing the start-up heap moves
it out of the collector's sight (CPython's ``gc.freeze``, meant for this), and a larger
young-generation threshold makes collections rarer: request garbage is short-lived and mostly
freed by reference counting anyway.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger("jury.heap")

# Collections of the youngest generation after this many net allocations (CPython's: 700).
YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Collect once, then keep every object alive now out of all later collections."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    logger.debug("froze %d start-up objects", gc.get_freeze_count())
