"""Fixtures: the fake authorization server over HTTPS, a fake clock, an in-memory keyring."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.smtpservers import Certs
from transports.settings import Settings
from tui.oauth import OAuthService

USERNAME = "me@contoso.example"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authority(clock: FakeClock) -> FakeAuthority:
    return FakeAuthority(clock=clock)


@pytest.fixture
async def auth_server(certs: Certs, authority: FakeAuthority) -> AsyncIterator[FakeAuthServer]:
    """The fake authority over HTTPS with a certificate from the test CA."""
    async with FakeAuthServer(authority, tls=certs.good.context()) as server:
        yield server


@pytest.fixture
def client_tls(certs: Certs) -> ssl.SSLContext:
    """A client context that trusts the test CA (and nothing else)."""
    return ssl.create_default_context(cafile=str(certs.ca_pem))


@pytest.fixture
def service(client_tls: ssl.SSLContext, clock: FakeClock) -> OAuthService:
    return OAuthService(verify=client_tls, sleep=clock.sleep, clock=clock, trust_env=False)


def oauth_settings(
    device_url: str, token_url: str, client_id: str = "smtpdesk-test-client"
) -> Settings:
    """Generic-provider OAuth2 settings pointed at the fake server."""
    return Settings.model_validate(
        {
            "timeout": 2,
            "smtp": {"host": "smtp.office365.com", "username": USERNAME, "auth": "oauth2"},
            "oauth": {
                "provider": "generic",
                "client_id": client_id,
                "device_authorization_url": device_url,
                "token_url": token_url,
                "scope": "https://outlook.office.com/SMTP.Send offline_access",
            },
        }
    )


@pytest.fixture
def settings(auth_server: FakeAuthServer) -> Settings:
    return oauth_settings(auth_server.device_url, auth_server.token_url)
