"""The sandbox's HTTP relay endpoint (DESIGN.md section 5b), spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import httpx
import pytest

from tui.sandbox import Sandbox

MESSAGE = b"From: demo@smtpdesk.test\r\nTo: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "envelope": {"from": "demo@smtpdesk.test", "to": ["a@example.test", "bcc@example.test"]},
        "message": base64.b64encode(MESSAGE).decode(),
    }
    body.update(changes)
    return body


async def _post(
    sandbox: Sandbox, *, key: str | None = None, path: str = "/send", **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or sandbox.http_key}"}
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.post(
            f"http://127.0.0.1:{sandbox.http_port}{path}", headers=headers, timeout=2, **kwargs
        )


async def test_valid_post_is_captured_and_answered_with_the_queue_id(sandbox: Sandbox) -> None:
    response = await _post(sandbox, json=_body())
    assert response.status_code == 200
    [captured] = sandbox.messages
    assert response.json() == {
        "id": captured.queue_id,
        "accepted": ["a@example.test", "bcc@example.test"],
    }
    assert response.headers["connection"] == "close"
    assert captured.via == "http"
    assert captured.recipients == ("a@example.test", "bcc@example.test")
    assert captured.path.read_bytes() == MESSAGE
    assert captured.path.name == f"0001-{captured.queue_id}.eml"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "the body is not JSON"),
        (b"[]", "the body must be a JSON object"),
        (b'{"message": "aGk="}', "envelope: must be an object"),
        (b'{"envelope": {"from": "a@b.test", "to": []}, "message": "aGk="}', "envelope.to:"),
        (b'{"envelope": {"from": 1, "to": ["a@b.test"]}, "message": "aGk="}', "envelope.from"),
        (
            b'{"envelope": {"from": "a@b.test", "to": ["bad address"]}, "message": "aGk="}',
            "envelope.to[0]:",
        ),
        (
            b'{"envelope": {"from": "a@b.test", "to": ["x@b.test\\r\\nRCPT"]}, "message": "aGk="}',
            "envelope.to[0]: must not contain a line break",
        ),
        (b'{"envelope": {"from": "a@b.test", "to": ["x@b.test"]}, "message": "%%"}', "base64"),
        (b'{"envelope": {"from": "a@b.test", "to": ["x@b.test"]}}', "message:"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    sandbox: Sandbox, body: bytes, error: str
) -> None:
    response = await _post(sandbox, content=body)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert sandbox.messages == []


async def test_wrong_key_is_401_before_the_body_is_looked_at(sandbox: Sandbox) -> None:
    response = await _post(sandbox, key="nope", content=b"not json")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_other_paths_are_404_and_other_methods_405(sandbox: Sandbox) -> None:
    assert (await _post(sandbox, path="/other", json=_body())).status_code == 404
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{sandbox.http_port}/send")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_oversized_body_is_413(tmp_path: Any) -> None:
    async with Sandbox(tmp_path, max_message_size=1000) as sandbox:
        response = await _post(sandbox, content=b"x" * 200_000)
        assert response.status_code == 413
        assert sandbox.messages == []


async def test_missing_content_length_is_411(sandbox: Sandbox) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sandbox.http_port)
    writer.write(b"POST /send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), timeout=2)
    writer.close()
    await writer.wait_closed()
    assert reply.startswith(b"HTTP/1.1 411 ")


async def test_stop_with_a_request_half_sent_ends_quietly(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An open, unfinished request does not keep stop() waiting or log an error."""
    caplog.set_level(logging.DEBUG)
    sandbox = Sandbox(tmp_path)
    await sandbox.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sandbox.http_port)
    writer.write(b"POST /send HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part of the body")
    await writer.drain()
    while sandbox.http_requests == 0:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(sandbox.stop(), timeout=3)
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()
    await writer.wait_closed()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
