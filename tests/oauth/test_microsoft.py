"""The Microsoft provider: the real endpoint URLs and scope, answered in-process.

No network: an ``httpx.MockTransport`` hands each request to the same fake
authority the HTTPS tests use, after checking it went to
login.microsoftonline.com with the tenant from the settings.
"""

from __future__ import annotations

import httpx
import pytest

from tests.oauth.conftest import USERNAME
from tests.oauth.fakeauth import DEVICE_PATH, TOKEN_PATH, FakeAuthority, FakeClock
from tests.secrets.keyrings import MemoryKeyring
from transports.settings import Settings
from tui.oauth import MICROSOFT_SCOPE, OAuthError, OAuthFailure, OAuthService

CLIENT_ID = "0b1c2d3e-aaaa-bbbb-cccc-123456789abc"
TENANT = "contoso.onmicrosoft.com"


def microsoft_settings(tenant: str = TENANT) -> Settings:
    return Settings.model_validate(
        {
            "preset": "office365",
            "smtp": {"host": "smtp.office365.com", "username": USERNAME, "auth": "oauth2"},
            "oauth": {"provider": "microsoft", "tenant": tenant, "client_id": CLIENT_ID},
        }
    )


def microsoft_service(authority: FakeAuthority, clock: FakeClock) -> OAuthService:
    paths = {
        f"/{TENANT}/oauth2/v2.0/devicecode": DEVICE_PATH,
        f"/{TENANT}/oauth2/v2.0/token": TOKEN_PATH,
    }

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.scheme == "https"
        assert request.url.host == "login.microsoftonline.com"
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(httpx.QueryParams(request.content.decode()))
        path = paths.get(request.url.path, request.url.path)
        status, body = authority.answer(path, form)
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return OAuthService(http_transport=httpx.MockTransport(handle), sleep=clock.sleep, clock=clock)


async def test_microsoft_sign_in_and_refresh(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    authority.poll_script = ["authorization_pending", None]
    service = microsoft_service(authority, clock)
    settings = microsoft_settings()
    code = await service.start_device_flow(settings)
    await service.poll(settings, code)
    assert authority.seen[0].form == {"client_id": CLIENT_ID, "scope": MICROSOFT_SCOPE}
    assert authority.polls[0].form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    token = await service.get_access_token(settings, force_refresh=True)
    assert token in authority.access_tokens
    refresh = authority.refreshes[0].form
    assert refresh["scope"] == "https://outlook.office.com/SMTP.Send offline_access"
    assert refresh["client_id"] == CLIENT_ID


async def test_microsoft_unknown_tenant_path_is_a_plain_error(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    """Another tenant goes to another URL; here the fake answers 404 like a wrong path."""
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    service = microsoft_service(authority, clock)
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(microsoft_settings("fabrikam.onmicrosoft.com"))
    assert info.value.kind is OAuthFailure.SERVER_ERROR
    assert "login.microsoftonline.com refused the request (HTTP 404" in str(info.value)
