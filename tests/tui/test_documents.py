"""The Documents screen, the Email dialog and the Sent screen at 80x24, against the sandbox.

Every send goes to a real sandbox (STARTTLS, AUTH, a self-signed certificate
trusted through ``ca_file``) and through the real send log in the test's data
dir; the documents folder is the fixed one of ``tests.tui.documents_folder``.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Select, Static

from screens.documents import DocumentsScreen
from screens.email import EmailScreen
from screens.sent import SentScreen
from screens.widgets import FieldError, HintsPanel, Notice
from tests.tui.conftest import write_settings
from tests.tui.documents_folder import make_documents_folder
from transports.base import SendResult
from transports.errors import FailureClass, SendFailure
from transports.events import Step
from transports.settings import Settings
from tui.app import SmtpDeskApp, make_app
from tui.documents import load_folder
from tui.emailing import creation_date_from_env, render_attachment
from tui.sandbox import Fault, Faults, Sandbox
from tui.sendlog import EntryState, QueueItem, SendLog

SIZE = (80, 24)
EPOCH = "1764547200"  # 2025-12-01: fixed PDF creation date, so the bytes can be compared


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    return make_documents_folder(tmp_path / "docs")


@pytest.fixture(autouse=True)
def fixed_pdf_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def saved_sandbox_settings(
    sandbox: Sandbox, config_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: object
) -> Settings:
    """Save settings for the sandbox; the password comes from SMTPDESK_PASSWORD."""
    data = sandbox.settings("starttls", timeout=5).model_dump(mode="json")
    data.update(extra)
    settings = Settings.model_validate(data)
    write_settings(config_path, settings)
    monkeypatch.setenv("SMTPDESK_PASSWORD", sandbox.password)
    return settings


def new_app(config_path: Path, documents: Path) -> SmtpDeskApp:
    app = make_app(config_path=config_path, documents_dir=documents, cursor_blink=False)
    app.document_services.backoff = (0.05,)
    return app


async def open_documents(pilot: Pilot[int]) -> DocumentsScreen:
    await pilot.press("ctrl+o")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DocumentsScreen)
    return screen


async def settle(pilot: Pilot[int]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def cell(screen: DocumentsScreen, doc_id: str, column: str) -> str:
    return str(screen.query_one("#documents", DataTable).get_cell(doc_id, column))


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_email_is_off_before_save_and_on_after(
    config_path: Path, documents: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No settings file: Email is dimmed and says why; once saved it is enabled."""
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_documents(pilot)
        assert screen.check_action("email", ()) is None  # shown dimmed in the footer
        assert screen.check_action("email_marked", ()) is None
        off = screen.query_one("#email-off", Notice).text
        assert off.startswith("Email is off until the settings are saved")
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is screen  # no dialog
        # The table is there all the same, and the broken file is reported by line.
        assert screen.query_one("#documents", DataTable).row_count == 4
        problems = screen.query_one("#folder-problems", Notice).text
        assert "documents/BROKEN.json:2:" in problems
        assert "1 file skipped" in problems

        saved_sandbox_settings(sandbox, config_path, monkeypatch)
        await pilot.press("escape")  # back to the settings, then Documents again
        await pilot.pause()
        screen = await open_documents(pilot)
        assert screen.check_action("email", ()) is True
        assert screen.query_one("#email-off", Notice).text == ""
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EmailScreen)


async def test_unreadable_settings_keep_email_off(config_path: Path, documents: Path) -> None:
    """A settings file that does not load is not "saved settings": Email stays off."""
    config_path.parent.mkdir(parents=True)
    config_path.write_text('protocol = "smtp"\nbogus = 1\n', encoding="utf-8")
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_documents(pilot)
        assert screen.check_action("email", ()) is None
        assert "bogus" in screen.query_one("#email-off", Notice).text


async def test_email_dialog_sends_the_pdf_with_reply_to_and_blind_copy(
    config_path: Path, documents: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """To pre-filled from the contact, edited to two addresses plus Cc; the PDF arrives."""
    settings = saved_sandbox_settings(
        sandbox,
        config_path,
        monkeypatch,
        reply_to="billing@acme.example.test",
        copy_to="archive@acme.example.test",
    )
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        await open_documents(pilot)
        await pilot.press("e")  # the first row: INV-0042, the oldest
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, EmailScreen)
        to = dialog.query_one("#email-to", Input)
        assert to.value == "billing@mueller.example.test"
        subject = dialog.query_one("#email-subject", Input).value
        assert subject == "Invoice INV-0042 from ACME Ltd"
        attachment = str(dialog.query_one("#email-attachment", Static).content)
        assert attachment.startswith("Attachment: Invoice-INV-0042.pdf (")
        assert attachment.endswith(" kB)")
        preview = str(dialog.query_one("#email-preview", Static).content)
        assert "Widget — 3 pcs × €10.10 = €30.30" in preview

        to.value = "billing@mueller.example.test, jw@mueller.example.test"
        dialog.query_one("#email-cc", Input).value = "boss@mueller.example.test"
        await pilot.press("ctrl+s")
        await settle(pilot)

        assert dialog.sent
        status = dialog.query_one("#email-status", Notice).text
        assert status.startswith("✓ Sent to billing@mueller.example.test")
        assert len(sandbox.messages) == 1
        captured = sandbox.messages[0]
        assert set(captured.recipients) == {
            "billing@mueller.example.test",
            "jw@mueller.example.test",
            "boss@mueller.example.test",
            "archive@acme.example.test",
        }
        message = parse(captured.data)
        assert message["Reply-To"] == "billing@acme.example.test"
        assert message["Bcc"] is None
        assert "archive@acme.example.test" not in captured.data.decode("utf-8", "replace")
        assert message["Subject"] == subject
        pdf = next(iter(message.iter_attachments()))
        assert pdf.get_filename() == "Invoice-INV-0042.pdf"
        library = load_folder(documents, business_name=settings.from_name)
        expected = render_attachment(
            library.documents["INV-0042"],
            library,
            settings,
            creation_date=creation_date_from_env(),
        )
        assert pdf.get_content() == expected.data  # byte-identical to `documents render`

        # The transcript is there on demand, and the send is in the log.
        transcript = dialog.query_one("#email-transcript")
        assert transcript.display is False
        await pilot.press("ctrl+t")
        assert transcript.display is True
        assert dialog.check_action("send", ()) is None  # sent: no second send
        await pilot.press("escape")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DocumentsScreen)
        assert cell(screen, "INV-0042", "last") != "never"
    with SendLog() as log:
        entries = log.entries()
    assert [(e.document_id, e.state) for e in entries] == [("INV-0042", EntryState.SENT)]
    assert entries[0].queue_id == captured.queue_id


async def test_email_dialog_shows_errors_under_the_field(
    config_path: Path, documents: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad address or a line break in the subject: the field says so, nothing is sent."""
    saved_sandbox_settings(sandbox, config_path, monkeypatch)
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        await open_documents(pilot)
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, EmailScreen)
        dialog.query_one("#email-to", Input).value = "billing@mueller.example.test, not-an-address"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert dialog.query_one("#err-to", FieldError).message.startswith("to: ")
        dialog.query_one("#email-to", Input).value = ""
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "at least one recipient" in dialog.query_one("#err-to", FieldError).message
        dialog.query_one("#email-to", Input).value = "billing@mueller.example.test"
        dialog.query_one("#email-subject", Input).value = "Invoice\r\nBcc: victim@example.test"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert dialog.query_one("#err-to", FieldError).message == ""
        assert dialog.query_one("#err-subject", FieldError).message.startswith("subject: ")
        assert not dialog.sending and not dialog.sent
    assert sandbox.messages == []


async def test_batch_of_three_over_one_connection_with_one_refused(
    config_path: Path, documents: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three marked invoices, one connection; the 550 one is failed with hints, others sent."""
    saved_sandbox_settings(sandbox, config_path, monkeypatch)
    sandbox.faults = Faults(
        Fault("rcpt", "550 5.1.1 mailbox unavailable", "accounts@zoe.example.test")
    )
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_documents(pilot)
        assert screen.check_action("email_marked", ()) is None  # nothing marked yet
        await pilot.press("space", "space", "space")  # marks and moves down
        assert screen.marked == ["INV-0042", "INV-0043", "INV-0044"]
        assert cell(screen, "INV-0043", "mark") == "●"
        await pilot.press("b")
        await settle(pilot)

        report = screen.report
        assert report is not None
        assert report.connections == 1
        assert [r.state for r in report.results] == [
            EntryState.SENT,
            EntryState.FAILED,
            EntryState.SENT,
        ]
        assert [m.recipients for m in sandbox.messages] == [
            ("billing@mueller.example.test",),
            ("orders@omega.example.test",),
        ]
        assert cell(screen, "INV-0042", "result") == "✓ sent"
        assert cell(screen, "INV-0043", "result") == "✗ failed"
        assert cell(screen, "INV-0044", "result") == "✓ sent"
        bar = screen.query_one("#batch-progress", ProgressBar)
        assert (bar.progress, bar.total) == (3, 3)
        counts = str(screen.query_one("#batch-counts").render())
        assert "3/3 · sent 2 · failed 1" in counts
        assert screen.marked == ["INV-0043"]  # the failed one stays marked for another go
        status = screen.query_one("#batch-status", Notice).text
        assert "2 sent, 1 failed (1 connection)" in status

        # The hints panel follows the highlighted row.
        table = screen.query_one("#documents", DataTable)
        table.move_cursor(row=table.get_row_index("INV-0043"))
        await pilot.pause()
        hints = screen.query_one("#doc-hints", HintsPanel)
        assert hints.hints
        summary = str(screen.query_one("#doc-summary", Static).content)
        assert "Result: failed:" in summary and "550" in summary
        table.move_cursor(row=table.get_row_index("INV-0042"))
        await pilot.pause()
        assert hints.hints == ()


async def test_escape_stops_the_batch_after_the_current_message(
    config_path: Path, documents: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escape while the first message is on the wire: it is sent, the others are not."""
    saved_sandbox_settings(sandbox, config_path, monkeypatch)
    app = new_app(config_path, documents)
    pressed: list[bool] = []

    def press_escape_on_first_rcpt(stage: str, address: str, attempt: int) -> None:
        if stage == "rcpt" and not pressed:
            screen = app.screen
            assert isinstance(screen, DocumentsScreen)
            assert screen.check_action("cancel_batch", ()) is True  # escape means Stop now
            assert screen.check_action("back", ()) is False
            screen.action_cancel_batch()
            pressed.append(True)
        return None

    sandbox.faults = press_escape_on_first_rcpt
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_documents(pilot)
        await pilot.press("a")  # mark all four
        assert len(screen.marked) == 4
        await pilot.press("b")
        await settle(pilot)
        report = screen.report
        assert report is not None and report.cancelled
        assert len(sandbox.messages) == 1
        assert cell(screen, "INV-0042", "result") == "✓ sent"
        for doc_id in ("INV-0043", "INV-0044", "Q-0007"):
            assert cell(screen, doc_id, "result") == "not sent"
        status = screen.query_one("#batch-status", Notice).text
        assert status.startswith("Stopped.")
        assert f"smtpdesk send --resume {report.batch_id}" in status
        assert screen.check_action("back", ()) is True  # escape goes back again


def _log_entries() -> None:
    """One sent, one failed, one unknown entry, through the real send log."""
    when = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    with SendLog(now=lambda: when) as log:
        ids = log.queue(
            "batch-1",
            [
                QueueItem("INV-0042", "<a@acme.test>", "INV-0042", ("a@x.test",), "Invoice A"),
                QueueItem("INV-0043", "<b@acme.test>", "INV-0043", ("b@x.test",), "Invoice B"),
                QueueItem("INV-0044", "<c@acme.test>", "INV-0044", ("c@x.test",), "Invoice C"),
            ],
        )
        for entry_id in ids:
            log.mark_sending(entry_id)
        log.mark_sent(
            ids[0],
            SendResult("<a@acme.test>", "Q1", "250 2.0.0 queued as Q1", ("a@x.test",)),
        )
        failure = SendFailure(
            FailureClass.RECIPIENT_REJECTED,
            Step.RCPT,
            "Recipient refused",
            detail="550 5.1.1 no such user",
            reply_code=550,
            hints=("Check the address.",),
        )
        log.mark_failed(ids[1], failure, final=True)
        log.mark_unknown(ids[2], "connection lost after DATA")


async def test_sent_screen_lists_the_log_and_filters(config_path: Path, documents: Path) -> None:
    """Every entry with its state; unknown ones stand out; filters by document and state."""
    _log_entries()
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        await open_documents(pilot)
        await pilot.press("l")
        await pilot.pause()
        sent = app.screen
        assert isinstance(sent, SentScreen)
        table = sent.query_one("#sent", DataTable)
        assert table.row_count == 3
        states = [str(table.get_row_at(i)[1]) for i in range(3)]
        assert states == ["UNKNOWN?", "FAILED", "sent"]  # newest first
        detail = str(sent.query_one("#sent-detail", Static).content)
        assert "may or may not have this message" in detail
        assert "--resend-unknown" in detail

        sent.query_one("#filter-state", Select).value = "failed"
        await pilot.pause()
        assert table.row_count == 1
        assert str(table.get_row_at(0)[2]) == "INV-0043"
        detail = str(sent.query_one("#sent-detail", Static).content)
        assert "550 5.1.1 no such user" in detail and "• Check the address." in detail

        sent.query_one("#filter-state", Select).value = ""
        sent.query_one("#filter-document", Select).value = "INV-0042"
        await pilot.pause()
        assert table.row_count == 1
        row = [str(value) for value in table.get_row_at(0)]
        assert row[1:5] == ["sent", "INV-0042", "a@x.test", "Invoice A"]
        assert row[5] == "250 2.0.0 queued as Q1"

        sent.query_one("#filter-state", Select).value = "unknown"
        await pilot.pause()
        assert table.row_count == 0
        assert sent.query_one("#sent-status", Notice).text == "No entries match the filters."
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DocumentsScreen)


async def test_sent_screen_with_no_log_says_so(config_path: Path, documents: Path) -> None:
    """Before anything was sent there is no log file, and the screen says so."""
    app = new_app(config_path, documents)
    async with app.run_test(size=SIZE) as pilot:
        await open_documents(pilot)
        await pilot.press("l")
        await pilot.pause()
        sent = app.screen
        assert isinstance(sent, SentScreen)
        assert sent.query_one("#sent", DataTable).row_count == 0
        assert "empty" in sent.query_one("#sent-status", Notice).text


async def test_open_pdf_hands_a_private_copy_to_the_viewer(
    config_path: Path,
    documents: Path,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """ctrl+o writes the PDF to a 0600 temporary file for the viewer; it goes with the screen."""
    saved_sandbox_settings(sandbox, config_path, monkeypatch)
    seen = tmp_path / "seen.txt"
    # A stand-in viewer: records the file's mode and copies it (sh gets the path as $0).
    viewer = [
        "/bin/sh",
        "-c",
        f'stat -c %a "$0" > {seen}.tmp && cp "$0" {seen}.pdf && mv {seen}.tmp {seen}',
    ]
    app = new_app(config_path, documents)
    app.document_services.viewer = lambda: viewer
    async with app.run_test(size=SIZE) as pilot:
        await open_documents(pilot)
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, EmailScreen)
        assert dialog.check_action("open_pdf", ()) is True
        await pilot.press("ctrl+o")
        await settle(pilot)
        for _ in range(200):
            if seen.exists():
                break
            await pilot.pause(0.01)
        assert seen.read_text().strip() == "600"
        assert dialog.attachment is not None
        assert Path(f"{seen}.pdf").read_bytes() == dialog.attachment.data
        (written,) = app.document_services.temp_files
        assert written.exists()
        await pilot.press("escape")  # the dialog
        await pilot.pause()
        await pilot.press("escape")  # the Documents screen: its temporary files go
        await pilot.pause()
        assert not written.exists()
    assert sandbox.messages == []
