"""Answers that are not what OAuth promises: each a plain error, never a crash.

Scripted in-process with ``httpx.MockTransport`` (no sockets needed to send
malformed JSON); the HTTPS behaviour is covered by the fake-server tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.oauth.conftest import oauth_settings
from tests.oauth.fakeauth import FakeClock
from tests.secrets.keyrings import MemoryKeyring
from tui.oauth import DeviceCode, OAuthError, OAuthFailure, OAuthService

SETTINGS = oauth_settings("https://auth.example.com/device", "https://auth.example.com/token")
GOOD_DEVICE: dict[str, Any] = {
    "device_code": "dc-1",
    "user_code": "WXYZ-1234",
    "verification_uri": "https://auth.example.com/activate",
    "expires_in": 600,
    "interval": 2,
}


def service_answering(
    clock: FakeClock, device: httpx.Response, token: httpx.Response | None = None
) -> OAuthService:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/device":
            return device
        assert token is not None
        return token

    return OAuthService(http_transport=httpx.MockTransport(handle), sleep=clock.sleep, clock=clock)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**GOOD_DEVICE, "device_code": ""}, "no device_code"),
        ({**GOOD_DEVICE, "user_code": "\x1b\x07"}, "no user_code"),
        ({**GOOD_DEVICE, "verification_uri": "javascript:alert(1)"}, "no https verification_uri"),
        ({**GOOD_DEVICE, "expires_in": "soon"}, "no expires_in"),
    ],
)
async def test_incomplete_device_answers(
    body: dict[str, Any], words: str, clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    service = service_answering(clock, httpx.Response(200, json=body))
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(SETTINGS)
    assert info.value.kind is OAuthFailure.BAD_RESPONSE
    assert words in str(info.value) and "oauth.device_authorization_url" in str(info.value)


async def test_device_answer_defaults_and_string_numbers(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    """Microsoft's v1 shape: verification_url, numbers as strings, no interval, no message."""
    body = {
        "device_code": "dc-1",
        "user_code": "WXYZ-1234",
        "verification_url": "https://auth.example.com/activate",
        "expires_in": "600",
    }
    service = service_answering(clock, httpx.Response(200, json=body))
    code = await service.start_device_flow(SETTINGS)
    assert (code.expires_in, code.interval) == (600, 5)
    assert code.verification_uri == "https://auth.example.com/activate"
    assert code.message == (
        "On any device, open https://auth.example.com/activate and enter the code WXYZ-1234 "
        "to sign in."
    )


@pytest.mark.parametrize(
    ("response", "kind", "words"),
    [
        (httpx.Response(200, text="<html>login</html>"), OAuthFailure.BAD_RESPONSE, "HTTP 200"),
        (httpx.Response(502, text="bad gateway"), OAuthFailure.SERVER_ERROR, "HTTP 502"),
        (
            httpx.Response(200, content=b"[" + b"1," * 40_000 + b"1]"),
            OAuthFailure.BAD_RESPONSE,
            "larger than 64 KiB",
        ),
        (httpx.Response(200, json=["not", "an", "object"]), OAuthFailure.BAD_RESPONSE, "JSON"),
    ],
)
async def test_answers_that_are_not_oauth_json(
    response: httpx.Response,
    kind: OAuthFailure,
    words: str,
    clock: FakeClock,
    memory_keyring: MemoryKeyring,
) -> None:
    service = service_answering(clock, response)
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(SETTINGS)
    assert info.value.kind is kind
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"token_type": "Bearer", "expires_in": 3600}, "without an access token"),
        (
            {"access_token": "at-1", "token_type": "mac", "refresh_token": "rt-1"},
            "XOAUTH2 needs a Bearer token",
        ),
        ({"access_token": "at-1", "token_type": "Bearer"}, "gave no refresh token"),
    ],
)
async def test_token_answers_that_cannot_be_used(
    body: dict[str, Any], words: str, clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    service = service_answering(
        clock, httpx.Response(200, json=GOOD_DEVICE), httpx.Response(200, json=body)
    )
    code = await service.start_device_flow(SETTINGS)
    with pytest.raises(OAuthError) as info:
        await service.poll(SETTINGS, code)
    assert info.value.kind is OAuthFailure.BAD_RESPONSE
    assert words in str(info.value)
    assert "at-1" not in str(info.value) and "rt-1" not in str(info.value)
    assert memory_keyring.entries == {}


async def test_a_missing_expiry_means_an_hour(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    body = {"access_token": "at-1", "refresh_token": "rt-1"}
    service = service_answering(
        clock, httpx.Response(200, json=GOOD_DEVICE), httpx.Response(200, json=body)
    )
    code: DeviceCode = await service.start_device_flow(SETTINGS)
    status = await service.poll(SETTINGS, code)
    assert status.access_token_expires_at == clock.now + 3600
