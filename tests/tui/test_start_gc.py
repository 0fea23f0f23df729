"""The garbage collector while the app starts (``tui/app.py``, issue 8 benchmark 1):
paused while the settings screen is built, resumed with the start-up objects frozen
once the screen has painted and gone idle, resumed when the app ends however early it
ends; the frozen objects stay frozen until the next app starts (the process usually
ends with the app); a collector the caller had disabled is left alone."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from screens.settings import SettingsScreen
from tests.tui.fakes import FakeEngine
from tui.app import SmtpDeskApp, make_app


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """Whatever a test does, the session gets its collector back as it was."""
    enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def app_for(config_path: Path) -> SmtpDeskApp:
    return make_app(config_path=config_path, run_test=FakeEngine(), cursor_blink=False)


def watch_mount(monkeypatch: pytest.MonkeyPatch, *, leave: bool = False) -> dict[str, object]:
    """Note the collector's state when the settings screen mounts (and leave then)."""
    seen: dict[str, object] = {}
    original = SettingsScreen.on_mount

    def on_mount(screen: SettingsScreen) -> None:
        seen["enabled at mount"] = gc.isenabled()
        seen["frozen at mount"] = gc.get_freeze_count()
        original(screen)
        if leave:
            screen.app.exit()

    monkeypatch.setattr(SettingsScreen, "on_mount", on_mount)
    return seen


async def test_paused_while_starting_then_resumed_with_the_start_frozen(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = watch_mount(monkeypatch)
    app = app_for(config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert seen["enabled at mount"] is False
        assert gc.isenabled()
        assert gc.get_freeze_count() > 10_000  # the widgets, their styles, the modules
        await pilot.press("ctrl+q")
    assert gc.isenabled()
    assert gc.get_freeze_count() > 10_000  # left frozen: the process ends with the app

    # The next app's start unfreezes them before pausing the collector again.
    async with app_for(config_path).run_test(size=(80, 24)) as pilot:
        assert seen == {"enabled at mount": False, "frozen at mount": 0}
        await pilot.pause()
        await pilot.pause()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 10_000


async def test_an_app_that_ends_before_its_first_idle_resumes_the_collector(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = watch_mount(monkeypatch, leave=True)
    app = app_for(config_path)
    async with app.run_test(size=(80, 24)):
        pass
    assert seen["enabled at mount"] is False
    assert gc.isenabled()
    assert gc.get_freeze_count() > 10_000  # what the start built, frozen at the end


async def test_the_pause_ends_in_time_even_if_the_screen_never_goes_idle(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SmtpDeskApp, "GC_PAUSE_AT_MOST", 0.2)
    original = SettingsScreen.call_after_refresh

    def call_after_refresh(
        screen: SettingsScreen, callback: Callable[..., object], *args: object
    ) -> bool:
        if getattr(callback, "__name__", "") == "_resume_gc":
            return True  # as if the settings screen never went idle
        return original(screen, callback, *args)

    monkeypatch.setattr(SettingsScreen, "call_after_refresh", call_after_refresh)
    app = app_for(config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.4)
        assert gc.isenabled()
        assert gc.get_freeze_count() > 10_000


async def test_a_collector_disabled_by_the_caller_stays_disabled(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.disable()
    seen = watch_mount(monkeypatch)
    app = app_for(config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    assert seen["enabled at mount"] is False
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
