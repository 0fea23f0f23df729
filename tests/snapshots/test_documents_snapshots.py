"""Snapshots of the Documents screen and the Email dialog at 80x24.

Deterministic content only: the fixed documents folder of
``tests.tui.documents_folder`` under the test's home (shown as ``~/docs``),
saved settings pointing at a fixed host (nothing is sent), no send log (every
document "never" emailed), a fixed PDF creation date (the attachment size),
no cursor blink, no animations, a fixed theme.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from screens.documents import DocumentsScreen
from screens.email import EmailScreen
from tests.tui.conftest import write_settings
from tests.tui.documents_folder import make_documents_folder
from transports.settings import Settings
from tui.app import SmtpDeskApp, make_app

SnapCompare = Callable[..., bool]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SmtpDeskApp:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")
    config_path = tmp_path / "config" / "settings.toml"
    settings = Settings.model_validate(
        {
            "preset": "custom",
            "from_name": "ACME Ltd",
            "reply_to": "billing@acme.example.test",
            "smtp": {
                "host": "smtp.acme.example.test",
                "port": 587,
                "security": "starttls",
                "username": "billing@acme.example.test",
            },
        }
    )
    write_settings(config_path, settings)
    documents = make_documents_folder(Path.home() / "docs")
    built = make_app(
        config_path=config_path,
        documents_dir=documents,
        cursor_blink=False,
        animations=False,
        theme="textual-dark",
    )
    built.document_services.viewer = lambda: None  # the same footer with or without a display
    return built


async def documents_screen(pilot: Pilot[int]) -> None:
    await pilot.press("ctrl+o")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(pilot.app.screen, DocumentsScreen)


async def email_dialog(pilot: Pilot[int]) -> None:
    await documents_screen(pilot)
    await pilot.press("e")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(pilot.app.screen, EmailScreen)


def test_documents_screen(snap_compare: SnapCompare, app: SmtpDeskApp) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=documents_screen)


def test_email_dialog(snap_compare: SnapCompare, app: SmtpDeskApp) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=email_dialog)
