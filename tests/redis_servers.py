"""The shared Redis server's test database (``JURY_TEST_REDIS_URL``, database 15 by default),
flushed before each test that uses it. A test that stops or freezes Redis starts its own server
instead (``eval/redis_servers.py``), so that it never disturbs the shared one.
"""

from __future__ import annotations

import os
from contextlib import closing

import redis

REDIS_URL = os.environ.get("JURY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def flush(url: str) -> None:
    """Empty the database of ``url``."""
    with closing(redis.Redis.from_url(url, socket_timeout=2)) as client:
        client.flushdb()
