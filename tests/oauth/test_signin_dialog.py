"""The sign-in dialog under Pilot: the code shown, success, cancel, errors in plain words."""

from __future__ import annotations

import asyncio

from textual.widgets import Static

from screens.oauth import OAuthSignInScreen
from tests.oauth.dialoghost import CLIENT_ID, DialogHost, mock_service, sleep_forever
from tests.oauth.fakeauth import FakeAuthority, FakeClock
from tests.secrets.keyrings import MemoryKeyring


def text(app: DialogHost, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def wait_for(condition: object, pilot: object) -> None:
    for _ in range(200):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_the_code_is_shown_and_a_sign_in_dismisses_with_the_status(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    gate = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await gate.wait()  # the first poll waits until the test has looked
        await clock.sleep(seconds)

    app = DialogHost(mock_service(authority, sleep, clock), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, OAuthSignInScreen)
        await wait_for(lambda: screen.code is not None, pilot)
        await pilot.pause()
        assert text(app, "#oauth-url") == "https://microsoft.com/devicelogin"
        assert text(app, "#oauth-code") == "BXKQ-7RTM"
        assert "The code expires in 15:00" in text(app, "#oauth-countdown")
        gate.set()
        await wait_for(lambda: bool(app.results), pilot)
    (status,) = app.results
    assert status is not None and status.signed_in
    assert len(memory_keyring.entries) == 1


async def test_escape_cancels_and_stores_nothing(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    app = DialogHost(mock_service(authority, sleep_forever, clock), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, OAuthSignInScreen)
        await wait_for(lambda: screen.code is not None, pilot)
        await pilot.press("escape")
        await wait_for(lambda: bool(app.results), pilot)
        assert not isinstance(app.screen, OAuthSignInScreen)
    assert app.results == [None]
    assert not memory_keyring.entries
    assert not authority.polls  # cancelled while waiting for the first poll


async def test_an_unknown_client_is_explained_and_close_dismisses(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    authority = FakeAuthority(clock=clock, client_id="another-client")
    app = DialogHost(mock_service(authority, clock.sleep, clock), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, OAuthSignInScreen)
        await wait_for(lambda: screen.error is not None, pilot)
        await pilot.pause()
        shown = text(app, "#oauth-state")
        assert f"does not accept the client id '{CLIENT_ID}'" in shown
        assert screen.query_one("#oauth-code", Static).display is False
        await pilot.click("#oauth-cancel-button")
        await wait_for(lambda: bool(app.results), pilot)
    assert app.results == [None]


async def test_a_declined_sign_in_is_explained(
    clock: FakeClock, memory_keyring: MemoryKeyring
) -> None:
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    authority.poll_script = ["authorization_pending", "access_denied"]
    app = DialogHost(mock_service(authority, clock.sleep, clock), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, OAuthSignInScreen)
        await wait_for(lambda: screen.error is not None, pilot)
        await pilot.pause()
        assert "declined (access_denied)" in text(app, "#oauth-state")
        await pilot.press("escape")
        await wait_for(lambda: bool(app.results), pilot)
    assert app.results == [None] and not memory_keyring.entries
