"""Snapshots of the settings screen (pytest-textual-snapshot).

Plain ``def`` tests: ``snap_compare`` runs the app itself. Every app comes from
``make_app`` with a fake engine that plays fixed events (no times, ports or
queue ids that change), no cursor blink, no animations and a fixed theme.
Regenerate with ``make snapshots-update`` only after looking at the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from screens.settings import SettingsScreen
from tests.tui.fakes import AUTH_FAILURE_EVENTS, FakeEngine, auth_failure_outcome
from transports.settings import Protocol
from tui.app import SmtpDeskApp, make_app

SnapCompare = Callable[..., bool]


def snapshot_app(tmp_path: Path, engine: FakeEngine | None = None) -> SmtpDeskApp:
    return make_app(
        config_path=tmp_path / "config" / "settings.toml",
        run_test=engine or FakeEngine(),
        cursor_blink=False,
        animations=False,
        theme="textual-dark",
    )


async def settings_screen(pilot: Pilot[int]) -> SettingsScreen:
    """The settings screen, once it is ready (run_before may start earlier)."""
    for _ in range(200):
        screen = pilot.app.screen
        if isinstance(screen, SettingsScreen) and screen.ready:
            await pilot.pause()
            return screen
        await pilot.pause(0.01)
    raise AssertionError("the settings screen never became ready")


async def fill_gmail(pilot: Pilot[int]) -> None:
    screen = await settings_screen(pilot)
    screen.choose_preset("gmail")
    screen.query_one("#smtp-username", Input).value = "me@gmail.com"
    screen.query_one("#password", Input).value = "abcd efgh ijkl mnop"
    screen.query_one("#from-name", Input).value = "ACME Ltd"
    await pilot.pause()
    screen.query_one("#preset", Select).focus()
    await pilot.pause()


async def run_fake_test(pilot: Pilot[int]) -> None:
    await fill_gmail(pilot)
    await pilot.press("ctrl+t")
    await pilot.pause()
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_empty_form(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24))


def test_gmail_form_with_guidance_wide(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=(120, 40), run_before=fill_gmail)


def test_http_mode(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def http(pilot: Pilot[int]) -> None:
        screen = await settings_screen(pilot)
        screen.query_one("#protocol", Select).value = Protocol.HTTP
        await pilot.pause()
        screen.query_one("#http-url", Input).value = "https://relay.acme.example/send"
        screen.query_one("#reply-to", Input).value = "billing@acme.example"
        await pilot.pause()
        screen.query_one("#protocol", Select).focus()
        await pilot.pause()

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24), run_before=http)


def test_finished_successful_test(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24), run_before=run_fake_test)


def test_failed_test_with_hints(snap_compare: SnapCompare, tmp_path: Path) -> None:
    engine = FakeEngine(AUTH_FAILURE_EVENTS, auth_failure_outcome("gmail"))
    assert snap_compare(
        snapshot_app(tmp_path, engine), terminal_size=(80, 24), run_before=run_fake_test
    )
