"""The test session's own starters: a service that is down is started, one that is up is left.

The machine's shared PostgreSQL and Redis are never stopped here (other runs use them): the
starter is driven against a free loopback port, where it starts a Redis daemon of its own.
"""

from __future__ import annotations

from contextlib import closing, suppress

import pytest
import redis

from eval.perf.procs import free_port
from tests.services import (
    Endpoint,
    ServiceError,
    ensure_redis,
    ensure_running,
    listening,
    url_endpoint,
)


def test_a_redis_that_is_down_is_started_then_left_alone() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert not listening(url_endpoint(url, 6379))

    assert ensure_redis(url) is True
    try:
        with closing(redis.Redis.from_url(url, socket_timeout=2)) as client:
            assert client.ping()
            client.set("started-by", "the test session")
            # A second call finds it answering and does not start another.
            assert ensure_redis(url) is False
            assert client.get("started-by") == b"the test session"
    finally:
        # It closes the connection as it exits.
        with (
            closing(redis.Redis.from_url(url, socket_timeout=2)) as client,
            suppress(redis.ConnectionError),
        ):
            client.shutdown(nosave=True)
    assert not listening(url_endpoint(url, 6379))


def test_a_server_that_is_not_on_loopback_is_never_started() -> None:
    remote = Endpoint(host="db.example.org", port=5432)
    with pytest.raises(ServiceError, match="does not answer"):
        ensure_running("PostgreSQL", remote, ["false"], up=lambda _endpoint: False)


def test_a_start_command_that_fails_says_so() -> None:
    endpoint = Endpoint(host="127.0.0.1", port=free_port())
    with pytest.raises(ServiceError, match=r"starting Redis with 'false' failed \(1\)"):
        ensure_running("Redis", endpoint, ["false"])


def test_a_service_that_never_comes_up_is_reported_after_the_timeout() -> None:
    endpoint = Endpoint(host="127.0.0.1", port=free_port())
    with pytest.raises(ServiceError, match="did not answer"):
        ensure_running("Redis", endpoint, ["true"], timeout_s=0.3)


def test_urls_name_their_endpoint_with_the_default_port() -> None:
    assert url_endpoint("postgresql+asyncpg://postgres@127.0.0.1/test", 5432) == Endpoint(
        "127.0.0.1", 5432
    )
    assert url_endpoint("redis://localhost:6390/4", 6379) == Endpoint("localhost", 6390)
