"""A minimal app that opens the sign-in dialog, for Pilot tests and snapshots.

The service answers in-process (``httpx.MockTransport`` over the fake
authority); its sleep and clock are injected, so nothing waits for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import httpx
from textual.app import App

from screens.oauth import OAuthSignInScreen
from tests.oauth.conftest import USERNAME
from tests.oauth.fakeauth import DEVICE_PATH, TOKEN_PATH, FakeAuthority
from transports.settings import Settings
from tui.oauth import OAuthService, OAuthStatus

CLIENT_ID = "0b1c2d3e-aaaa-bbbb-cccc-123456789abc"
TENANT = "contoso.onmicrosoft.com"


def dialog_settings() -> Settings:
    return Settings.model_validate(
        {
            "preset": "office365",
            "smtp": {"host": "smtp.office365.com", "username": USERNAME, "auth": "oauth2"},
            "oauth": {"provider": "microsoft", "tenant": TENANT, "client_id": CLIENT_ID},
        }
    )


def mock_service(
    authority: FakeAuthority,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
) -> OAuthService:
    """The service, its requests answered by ``authority`` (Microsoft URLs, no network)."""

    def handle(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        path = {
            f"/{TENANT}/oauth2/v2.0/devicecode": DEVICE_PATH,
            f"/{TENANT}/oauth2/v2.0/token": TOKEN_PATH,
        }.get(request.url.path, request.url.path)
        status, body = authority.answer(path, form)
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return OAuthService(http_transport=httpx.MockTransport(handle), sleep=sleep, clock=clock)


async def sleep_forever(seconds: float) -> None:
    """A poll that never comes: the dialog stays waiting (snapshots)."""
    await asyncio.Event().wait()


class DialogHost(App[None]):
    """Opens the sign-in dialog at mount and records what it dismissed with."""

    CSS_PATH: ClassVar[str] = str(Path(__file__).resolve().parents[2] / "tui" / "app.tcss")

    def __init__(self, service: OAuthService, *, clock: Callable[[], float]) -> None:
        super().__init__()
        self.service = service
        self.clock = clock
        self.results: list[OAuthStatus | None] = []

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.animation_level = "none"
        self.push_screen(
            OAuthSignInScreen(dialog_settings(), self.service, clock=self.clock),
            callback=self.results.append,
        )
