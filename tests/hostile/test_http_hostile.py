"""Hostile HTTP relays: classified failures, bounded reads, and the key never leaked.

Decision (documented in ``transports.http_relay``): redirects are never
followed, not even to the same host and port. The key travels only to the
URL in the settings; a 3xx is an ``HTTP_REDIRECT`` failure that names the
Location, so the user can put the final URL in the settings.
"""

from __future__ import annotations

import gzip
import logging
import tracemalloc
from typing import Any

import pytest

from tests.hostile.helpers import Ran, assert_classified, assert_clean, run
from tests.hostile.http_server import hostile_http, response
from tests.hostile.server import Close, Drip, Flood, Send, Silent
from tests.smtpservers import Certs
from transports.errors import FailureClass
from transports.events import Step
from transports.settings import Settings

F = FailureClass
KEY = "Relay-Key-Hostile-5e1f"


def relay(url: str, *, timeout: float = 1.0) -> Settings:
    return Settings.model_validate(
        {
            "protocol": "http",
            "preset": "custom",
            "reply_to": "billing@example.test",
            "timeout": timeout,
            "http": {"url": url},
        }
    )


def assert_no_key(ran: Ran, *more: str) -> None:
    texts = [*ran.texts(), *more]
    if ran.outcome.failure is not None:
        failure = ran.outcome.failure
        texts += [failure.title, failure.detail, failure.reply_text, str(failure)]
    for text in texts:
        assert KEY not in text, text
    assert_clean(ran)


# --- redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_host_is_not_followed(status: int) -> None:
    async with hostile_http(response(200, b'{"id": "stolen"}')) as thief:
        answer = response(status, headers={"Location": thief.url})
        async with hostile_http(answer) as relay_server:
            ran = await run(relay(relay_server.url), KEY)
    assert_classified(ran, F.HTTP_REDIRECT, Step.RESPONSE, within=2.0)
    assert thief.connections == 0 and thief.requests == []
    assert len(relay_server.requests) == 1
    assert relay_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert_no_key(ran)


async def test_redirect_to_the_same_host_is_not_followed_either() -> None:
    async with hostile_http(response(307, headers={"Location": "/other"})) as server:
        ran = await run(relay(server.url), KEY)
    failure = assert_classified(ran, F.HTTP_REDIRECT, Step.RESPONSE, within=2.0)
    assert len(server.requests) == 1
    assert "/other" in failure.detail


async def test_redirect_location_echoing_the_key_is_redacted() -> None:
    answer = response(302, headers={"Location": f"https://evil.example/?k={KEY}"})
    async with hostile_http(answer) as server:
        ran = await run(relay(server.url), KEY)
    assert_classified(ran, F.HTTP_REDIRECT, within=2.0)
    assert_no_key(ran)


# --- size and time -----------------------------------------------------------------------

FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.parametrize("status", [200, 500])
async def test_fifty_megabyte_body_is_read_bounded(status: int) -> None:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Length: {FIFTY_MB}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = (Send(head), Flood(b"z" * 65536, total=FIFTY_MB))
    async with hostile_http(answer) as server:
        tracemalloc.start()
        try:
            ran = await run(relay(server.url, timeout=2), KEY)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    if status == 200:
        assert ran.outcome.ok, ran.outcome
    else:
        assert_classified(ran, F.HTTP_SERVER_ERROR, within=3.0)
    assert ran.seconds < 3.0
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a 50 MB body"


async def test_gzip_bomb_is_read_bounded() -> None:
    """50 MB of zeros in 50 KB of gzip: decompressing it all would cost 50 MB."""
    bomb = gzip.compress(b"\0" * FIFTY_MB, compresslevel=9)
    answer = response(500, bomb, headers={"Content-Encoding": "gzip"})
    async with hostile_http(answer) as server:
        tracemalloc.start()
        try:
            ran = await run(relay(server.url, timeout=2), KEY)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert_classified(ran, F.HTTP_SERVER_ERROR, within=3.0)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a 50 KB gzip body"


@pytest.mark.parametrize(
    "answer",
    [
        (Silent(),),
        (Drip(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0.3),),
        (Send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"), Flood(b"x", pause=0.3)),
        (Send(b"HTTP/1.1 200 OK\r\n"), Flood(b"X-Forever: yes\r\n", pause=0.2)),
    ],
    ids=["silent", "drip-head", "drip-body", "endless-headers"],
)
async def test_reply_that_never_ends_times_out(answer: Any) -> None:
    """Each byte arrives in time for httpx's per-read timeout; the reply never ends."""
    async with hostile_http(answer) as server:
        ran = await run(relay(server.url, timeout=1), KEY)
    assert_classified(ran, F.TIMEOUT, Step.RESPONSE, within=2.0)
    assert_no_key(ran)


# --- not HTTP, not JSON, not TLS ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "failure_class"),
    [
        (b"HELLO I AM NOT HTTP\r\n\r\n", F.HTTP_BAD_RESPONSE),
        (b"HTTP/1.1 abc Nope\r\n\r\n", F.HTTP_BAD_RESPONSE),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", F.DISCONNECTED),
        ((Send(b"HTTP/1.1 200 OK\r\nContent-Len"), Close()), F.DISCONNECTED),
        ((Close(),), F.DISCONNECTED),
        (response(500, b"\xff\xfe\x00<html>\x1b[31m</html>"), F.HTTP_SERVER_ERROR),
        (response(200, b"\x00\x01 not json at all"), None),
        (response(200, b'{"id": "\\u001b[2Jx"}'), None),
        (response(999, b"{}"), F.HTTP_BAD_RESPONSE),
        (response(102, b""), None),
    ],
    ids=[
        "not-http",
        "bad-status",
        "short-body",
        "cut-head",
        "closed",
        "binary-500",
        "binary-200",
        "escape-id",
        "status-999",
        "status-102",
    ],
)
async def test_garbage_answers_are_classified(answer: Any, failure_class: F | None) -> None:
    async with hostile_http(answer) as server:
        ran = await run(relay(server.url), KEY)
    if failure_class is None and ran.outcome.ok:
        assert ran.outcome.result is not None
        assert "\x1b" not in ran.outcome.result.queue_id
        assert_no_key(ran)
        return
    assert_classified(
        ran,
        failure_class or {F.HTTP_BAD_RESPONSE, F.DISCONNECTED, F.TIMEOUT, F.PROTOCOL},
        within=2.5,
    )
    assert_no_key(ran)


async def test_untrusted_certificate(certs: Certs) -> None:
    async with hostile_http(response(200), tls=certs.good.context()) as server:
        ran = await run(relay(server.url), KEY)
    assert_classified(ran, F.CERT_UNTRUSTED, Step.TLS, within=2.0)
    assert server.requests == []  # the key never left


async def test_plain_http_behind_an_https_url() -> None:
    answer = (Send(response(400, b"plain HTTP here")), Close())
    async with hostile_http(answer, read_request=False) as server:
        ran = await run(relay(server.url.replace("http://", "https://")), KEY)
    assert_classified(ran, {F.TLS_WRONG_VERSION, F.TLS_HANDSHAKE}, Step.TLS, within=2.0)


async def test_server_that_closes_during_the_handshake() -> None:
    async with hostile_http((Close(),), read_request=False) as server:
        ran = await run(relay(server.url.replace("http://", "https://")), KEY)
    assert_classified(
        ran,
        {F.TLS_HANDSHAKE, F.TLS_WRONG_VERSION, F.DISCONNECTED, F.CONNECT_TIMEOUT},
        within=2.5,
    )


# --- the key echoed back ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 401, 500])
async def test_key_echoed_in_headers_and_body_is_redacted(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    b64 = base64.b64encode(KEY.encode()).decode()
    body = f'{{"error": "bad key {KEY}", "id": "{KEY}", "b64": "{b64}"}}'.encode()
    headers = {"X-Request-Id": KEY, "WWW-Authenticate": f'Bearer realm="{KEY}"', "Server": b64}
    caplog.set_level(logging.DEBUG)
    async with hostile_http(response(status, body, headers)) as server:
        ran = await run(relay(server.url), KEY)
    logged = [record.getMessage() for record in caplog.records]
    assert_no_key(ran, *logged)
    assert not any(b64 in text for text in [*ran.texts(), *logged])
    if ran.outcome.ok:
        assert ran.outcome.result is not None
        assert KEY not in ran.outcome.result.queue_id and KEY not in ran.outcome.result.reply
    else:
        assert ran.outcome.failure is not None


@pytest.mark.parametrize(
    "key",
    ["key\r\nX-Injected: 1", "kéy-with-accent-0123", "key\x00nul-0123", "key\x1b[2J-0123"],
    ids=["crlf", "non-ascii", "nul", "escape"],
)
async def test_key_that_cannot_be_a_header_is_refused_without_echo(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with hostile_http(response(200)) as server:
        events_ran = await run(relay(server.url), key)
    failure = assert_classified(events_ran, F.HTTP_CLIENT_ERROR, Step.REQUEST, within=2.0)
    assert server.requests == []  # nothing was sent
    logged = [record.getMessage() for record in caplog.records]
    for text in [*events_ran.texts(), *logged, str(failure), failure.detail, repr(failure)]:
        assert key not in text and repr(key)[1:-1] not in text, text


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_reply_is_still_read(encoding: str) -> None:
    import zlib

    data = b'{"id": "Q-compressed-1"}'
    body = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
    async with hostile_http(response(200, body, {"Content-Encoding": encoding})) as server:
        ran = await run(relay(server.url), KEY)
    assert ran.outcome.ok and ran.outcome.result is not None, ran.outcome
    assert ran.outcome.result.queue_id == "Q-compressed-1"
