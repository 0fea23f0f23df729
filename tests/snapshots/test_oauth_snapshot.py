"""Snapshot of the OAuth2 sign-in dialog at 80x24, waiting for the user.

Deterministic: the fake authority always hands out the code BXKQ-7RTM, the
poll never comes (the injected sleep waits forever) and the clock is fixed, so
the countdown reads 15:00.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from screens.oauth import OAuthSignInScreen
from tests.oauth.dialoghost import CLIENT_ID, DialogHost, mock_service, sleep_forever
from tests.oauth.fakeauth import FakeAuthority, FakeClock
from tests.secrets.keyrings import MemoryKeyring

SnapCompare = Callable[..., bool]


async def code_shown(pilot: Pilot[None]) -> None:
    for _ in range(300):
        screen = pilot.app.screen
        if isinstance(screen, OAuthSignInScreen) and screen.code is not None:
            await pilot.pause()
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the sign-in dialog never showed a code")


def test_sign_in_dialog_waiting(snap_compare: SnapCompare, memory_keyring: MemoryKeyring) -> None:
    clock = FakeClock()
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    app = DialogHost(mock_service(authority, sleep_forever, clock), clock=clock)
    assert snap_compare(app, terminal_size=(80, 24), run_before=code_shown)
