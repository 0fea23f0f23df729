"""The test send and Save at 80x24, against real servers on loopback: the sandbox
(success, and a wrong password on the Gmail preset), a tarpit that never greets
(timeout, and Escape mid-send), and Save with and without a prior test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Log

from screens.dialogs import ChoiceScreen, RecipientScreen
from screens.settings import SettingsScreen
from screens.widgets import HintsPanel, Notice
from tests.secrets.keyrings import MemoryKeyring
from tests.tui.conftest import write_settings
from tests.tui.fakes import FakeEngine
from transports.settings import Settings
from tui import secrets, verified
from tui.app import SmtpDeskApp, make_app
from tui.sandbox import Sandbox

SIZE = (80, 24)


def screen_of(app: SmtpDeskApp) -> SettingsScreen:
    for screen in app.screen_stack:
        if isinstance(screen, SettingsScreen):
            return screen
    raise AssertionError("no settings screen")


def transcript(app: SmtpDeskApp) -> list[str]:
    return list(screen_of(app).query_one("#transcript", Log).lines)


def status(app: SmtpDeskApp, widget_id: str = "test-status") -> str:
    return screen_of(app).query_one(f"#{widget_id}", Notice).text


async def set_password(pilot: Pilot[int], password: str) -> None:
    field = screen_of(pilot.app).query_one("#password", Input)  # type: ignore[arg-type]
    field.focus()
    await pilot.press(*password)


async def run_test_send(pilot: Pilot[int], recipient: str | None = None) -> None:
    """ctrl+t, answer the recipient dialog, wait for the send to end."""
    await pilot.press("ctrl+t")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, RecipientScreen)
    if recipient is not None:
        dialog.query_one("#recipient", Input).value = recipient
    await pilot.press("enter")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def sandbox_settings(sandbox: Sandbox, **smtp: object) -> Settings:
    data = sandbox.settings("starttls").model_dump(mode="json")
    data["smtp"].update(smtp)
    return Settings.model_validate(data)


@pytest.fixture
async def tarpit() -> AsyncIterator[int]:
    """A server that accepts connections and never says a word; yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_successful_test_streams_in_order_and_makes_save_direct(
    sandbox: Sandbox, config_path: Path
) -> None:
    settings = sandbox.settings("starttls")
    write_settings(config_path, settings)
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await set_password(pilot, sandbox.password)
        await pilot.press("ctrl+t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RecipientScreen)
        assert dialog.query_one("#recipient", Input).value == "demo@smtpdesk.test"
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

        lines = transcript(app)
        assert len(sandbox.messages) == 1
        queue_id = sandbox.messages[0].queue_id
        assert status(app).startswith("✓ Test message sent to demo@smtpdesk.test")
        assert f"queue id {queue_id}" in status(app)

        def first(fragment: str) -> int:
            return next(i for i, line in enumerate(lines) if fragment in line)

        order = [first("220 "), first("EHLO"), first("STARTTLS"), first("AUTH")]
        order += [first("MAIL FROM"), first("RCPT TO"), first("DATA"), first("QUIT")]
        assert order == sorted(order), lines
        assert all(line.lstrip()[0].isdigit() for line in lines)  # elapsed time first
        assert not any(sandbox.password in line.split("@")[-1] for line in lines[3:])
        assert screen_of(app).query_one("#hints-box").display is False
        assert verified.is_verified(settings)  # recorded by the thread worker

        # Save now goes straight through: no dialog, the settings file is written.
        config_path.unlink()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert config_path.exists()
        assert str(config_path) in status(app, "status")


async def test_wrong_password_on_gmail_preset_shows_app_password_steps(
    sandbox: Sandbox, config_path: Path
) -> None:
    # The Gmail preset's rules and hints, pointed at the sandbox through a settings file.
    write_settings(config_path, sandbox_settings(sandbox).model_copy(update={"preset": "gmail"}))
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        assert screen_of(app).preset_key == "gmail"
        await set_password(pilot, "wrong-password")
        await run_test_send(pilot)
        lines = transcript(app)
        assert any("!! FAILED at step AUTH" in line for line in lines), lines
        assert any("535" in line for line in lines)
        assert status(app).startswith("✗ Test failed at step AUTH")
        screen = screen_of(app)
        assert screen.query_one("#hints-box").display is True
        hints = screen.query_one("#hints", HintsPanel).text
        assert "2-Step Verification" in hints and "App passwords" in hints
        assert "Thunderbird" in hints  # always last
        assert "wrong-password" not in hints and not any("wrong-password" in x for x in lines)
        # the panel stays until the next test
        await pilot.press("tab", "tab")
        assert screen.query_one("#hints-box").display is True


async def test_server_that_never_greets_ends_in_a_timeout_hint(
    tarpit: int, config_path: Path
) -> None:
    settings = Settings.model_validate(
        {
            "timeout": 1,
            "smtp": {"host": "127.0.0.1", "port": tarpit, "from_address": "ops@server.local"},
        }
    )
    write_settings(config_path, settings)
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        started = time.monotonic()
        await run_test_send(pilot)
        assert time.monotonic() - started < 8
        assert status(app).startswith("✗ Test failed at step GREETING")
        hints = screen_of(app).query_one("#hints", HintsPanel).text
        assert "never said hello" in hints


async def test_escape_cancels_a_test_at_once(tarpit: int, config_path: Path) -> None:
    settings = Settings.model_validate(
        {"smtp": {"host": "127.0.0.1", "port": tarpit, "from_address": "ops@server.local"}}
    )  # timeout 20 s: only Escape ends this quickly
    write_settings(config_path, settings)
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.press("enter")
        for _ in range(50):
            await pilot.pause(0.02)
            if any("connect" in line.lower() for line in transcript(app)):
                break
        assert screen.sending
        assert screen.check_action("cancel_test", ()) is True
        started = time.monotonic()
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert time.monotonic() - started < 1.5
        assert not screen.sending
        assert screen.check_action("cancel_test", ()) is False
        assert status(app) == "Test cancelled."
        assert any("cancelled" in line for line in transcript(app))
        assert not screen.query_one("#test-button").disabled


def filled_app(config_path: Path, engine: FakeEngine | None = None) -> SmtpDeskApp:
    return make_app(config_path=config_path, run_test=engine or FakeEngine(), cursor_blink=False)


async def fill_valid(pilot: Pilot[int]) -> None:
    screen = screen_of(pilot.app)  # type: ignore[arg-type]
    screen.choose_preset("fastmail")
    screen.query_one("#smtp-username", Input).value = "me@fastmail.com"
    await pilot.pause()
    await set_password(pilot, "app-pass-1")


async def test_save_without_a_test_asks_first_and_explains_no_keyring(config_path: Path) -> None:
    app = filled_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        await fill_valid(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceScreen)
        assert "never tested" in dialog.message
        assert app.focused is not None and app.focused.id == "choice-test"  # the safe answer
        await pilot.click("#choice-save")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert config_path.exists()
        assert "app-pass-1" not in config_path.read_text()
        text = status(app, "status")
        assert f"Settings saved to {config_path}." in text
        # conftest makes the keyring fail, as on a headless server
        assert "The password was NOT saved" in text and secrets.NO_KEYRING_HELP in text


async def test_save_anyway_stores_the_password_in_the_keyring(
    config_path: Path, memory_keyring: MemoryKeyring
) -> None:
    app = filled_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        await fill_valid(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#choice-save")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "system keyring" in status(app, "status")
        assert list(memory_keyring.entries.values()) == ["app-pass-1"]


async def test_test_first_opens_the_test_and_changes_after_a_test_ask_again(
    config_path: Path,
) -> None:
    engine = FakeEngine()
    app = filled_app(config_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await fill_valid(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("enter")  # "Test first" is focused
        await pilot.pause()
        assert isinstance(app.screen, RecipientScreen)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [call[1:] for call in engine.calls] == [("app-pass-1", "me@fastmail.com")]
        screen = screen_of(app)
        tested = screen.validate()
        assert tested is not None and screen.is_verified(tested)
        # an edit after the test: Save asks again, saying why
        screen.query_one("#from-name", Input).value = "ACME Ltd"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceScreen)
        assert "changed since the last successful test" in dialog.message
        await pilot.press("escape")
        await pilot.pause()
        assert not config_path.exists()
        # a changed password is a change too
        screen.query_one("#from-name", Input).value = ""
        await set_password(pilot, "x")
        await pilot.pause()
        settings = screen.validate()
        assert settings == tested and not screen.is_verified(settings)


async def test_the_recipient_is_remembered_and_checked(config_path: Path) -> None:
    engine = FakeEngine()
    app = filled_app(config_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await fill_valid(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.screen.query_one("#recipient", Input).value = "not an address"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RecipientScreen)
        assert "not a valid email address" in str(app.screen.query_one("#err-recipient").render())
        app.screen.query_one("#recipient", Input).value = "boss@acme.example"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.screen.query_one("#recipient", Input).value == "boss@acme.example"
        await pilot.press("escape")
        await pilot.pause()
        assert [call[2] for call in engine.calls] == ["boss@acme.example"]


async def test_invalid_form_is_not_tested(config_path: Path) -> None:
    engine = FakeEngine()
    app = filled_app(config_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        assert engine.calls == []
        assert "need attention" in status(app, "status")
        assert app.focused is not None and app.focused.id == "smtp-host"


async def test_demo_starts_the_sandbox_and_fills_the_form(tmp_path: Path) -> None:
    app = make_app(config_path=tmp_path / "demo" / "settings.toml", demo=True, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.sandbox is not None:
                break
        await pilot.pause()
        sandbox = app.sandbox
        assert sandbox is not None
        screen = screen_of(app)
        assert screen.preset_key == "sandbox"
        assert screen.query_one("#smtp-port", Input).value == str(sandbox.submission_port)
        assert screen.password == sandbox.password
        await run_test_send(pilot)
        assert status(app).startswith("✓ Test message sent")
        assert len(sandbox.messages) == 1
    assert app.sandbox is None  # stopped on exit


class BrokenEngine(FakeEngine):
    """An engine with a bug: it raises instead of returning an outcome."""

    async def __call__(self, settings: Settings, secret: str | None, **kwargs: object) -> NoReturn:
        raise RuntimeError("engine bug")


async def test_an_engine_bug_is_shown_and_the_ui_recovers(config_path: Path) -> None:
    app = filled_app(config_path, BrokenEngine())
    async with app.run_test(size=SIZE) as pilot:
        await fill_valid(pilot)
        await run_test_send(pilot)
        screen = screen_of(app)
        assert not screen.sending and not screen.query_one("#test-button").disabled
        assert "unexpected error: engine bug" in status(app)


async def test_http_relay_test_send_against_the_sandbox(
    sandbox: Sandbox, config_path: Path
) -> None:
    write_settings(config_path, sandbox.settings("http"))
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert screen.field_shown("http-url") and not screen.field_shown("smtp-host")
        await set_password(pilot, sandbox.http_key)
        await run_test_send(pilot)
        assert status(app).startswith("✓ Test message sent"), transcript(app)
        assert any("POST" in line for line in transcript(app))
        assert not any(sandbox.http_key in line for line in transcript(app))
        assert len(sandbox.messages) == 1


async def test_without_a_typed_password_the_stored_one_is_used(
    sandbox: Sandbox, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(config_path, sandbox.settings("starttls"))
    app = make_app(config_path=config_path, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        # no keyring works (conftest) and nothing else: the engine says what is missing
        await run_test_send(pilot)
        assert any("no stored password: No keyring" in line for line in transcript(app))
        assert status(app).startswith("✗ Test failed")
        assert "password" in screen_of(app).query_one("#hints", HintsPanel).text
        # SMTPDESK_PASSWORD is looked up (in a thread) at send time
        monkeypatch.setenv("SMTPDESK_PASSWORD", sandbox.password)
        await run_test_send(pilot)
        assert status(app).startswith("✓ Test message sent"), transcript(app)
        assert screen_of(app).query_one("#hints-box").display is False
