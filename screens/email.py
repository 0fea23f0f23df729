"""The Email dialog: one document, pre-filled, sent through the send log.

``EmailScreen`` opens on a document from the Documents screen. It shows:

- **To** (the contact's addresses, editable, comma-separated), **Cc**, the
  **Subject** and the **body** from the document type's template
  (``tui.emailing.draft_email``), and the reply-to / blind copy the settings add;
- the attachment's name and size: the PDF is rendered when the dialog opens,
  in a thread worker (fpdf2 is CPU-bound);
- a text preview: the document's own summary (lines and totals). pypdf stays a
  development dependency (the tests read PDFs back with it); the real PDF can be
  opened in the system viewer (``xdg-open`` / ``open``) when there is one and a
  display to show it on, from a private temporary file (mode 0600).

Validation errors from ``build_email`` (``MessageError``, whose text starts with
the field) are shown under that field. Sending runs a one-job
``tui.batch.send_batch`` in an async worker, exactly like ``smtpdesk send
--document``: the send is recorded in the send log before and after, the
progress line follows the transcript, and the transcript itself is a ``Log``
pane toggled with ctrl+t. A failure shows its hints.

``DocumentServices`` (what the Documents, Email and Sent screens talk to) is
defined here and built by ``tui.app.make_app``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Log, Static, TextArea
from textual.worker import Worker, WorkerState

from screens.widgets import FieldError, HintsPanel, Notice
from transports.base import TokenSource
from transports.events import TranscriptEvent
from transports.message import Attachment, MessageError
from transports.settings import Protocol, Settings
from transports.testsend import open_transport
from tui import secrets
from tui.batch import BatchJob, JobResult, TransportFactory, send_batch
from tui.documents import (
    AnyDocument,
    Library,
    PurchaseOrder,
    Quote,
    Report,
    Statement,
    format_money,
)
from tui.documents import Invoice as InvoiceDoc
from tui.emailing import build_email, creation_date_from_env, draft_email, render_attachment
from tui.oauth import OAuthService
from tui.oauth_smtp import token_source, uses_oauth
from tui.pdf import format_date
from tui.sendlog import EntryState, SendLog, SendLogError
from tui.store import SettingsStore
from tui.terminal import neutralise

SecretLookup = Callable[[Settings], Awaitable[str | None]]
"""Finds the password or relay key for the settings (may raise ``SecretsError``)."""


async def lookup_secret(settings: Settings) -> str | None:
    """The password from ``SMTPDESK_PASSWORD``, the password command or the keyring.

    Runs the lookup in a thread (keyring calls can block on D-Bus). No login
    means no password; an HTTP relay without a keyring goes on without a key,
    as ``smtpdesk send`` does (a relay that needs one answers 401, and its hint
    names the key).
    """
    if settings.protocol is Protocol.SMTP and not settings.smtp.username:
        return None
    try:
        return await asyncio.to_thread(secrets.get_password, settings)
    except secrets.KeyringUnavailable:
        if settings.protocol is Protocol.HTTP:
            return None
        raise


def find_viewer() -> list[str] | None:
    """The command that opens a file in the system viewer, or None when there is none.

    ``open`` on macOS; ``xdg-open`` elsewhere, and only with a display (over SSH
    without X forwarding it would start a text browser inside our terminal).
    """
    if sys.platform == "darwin":
        found = shutil.which("open")
        return [found] if found else None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    found = shutil.which("xdg-open")
    return [found] if found else None


def _no_typed_password() -> str:
    return ""


@dataclass
class DocumentServices:
    """What the Documents, Email and Sent screens use; built by ``tui.app.make_app``."""

    store: SettingsStore
    """The settings file: Email is enabled once it exists and loads."""
    documents_dir: Path | None = None
    """``--documents`` (None: ``SMTPDESK_DOCUMENTS``, the settings, the data dir)."""
    secret: SecretLookup = lookup_secret
    """The password lookup (the demo passes the sandbox's)."""
    typed_password: Callable[[], str] = _no_typed_password
    """The password typed into the settings form: used when no stored one is found."""
    transport_factory: TransportFactory = open_transport
    backoff: Sequence[float] = (1.0, 4.0, 10.0)
    """Seconds before each retry of a temporary failure."""
    max_attempts: int = 3
    viewer: Callable[[], list[str] | None] = find_viewer
    """The system PDF viewer command, if any."""
    cursor_blink: bool = True
    """Off for snapshot tests."""
    temp_files: list[Path] = field(default_factory=list)
    """PDFs written for the viewer; removed when the Documents screen closes."""
    oauth: OAuthService = field(default_factory=OAuthService)
    """The OAuth2 sign-in, for settings with ``smtp.auth = "oauth2"``."""

    def tokens(self, settings: Settings) -> TokenSource | None:
        """The XOAUTH2 token source for these settings (None: they log in with a password)."""
        return token_source(settings, self.oauth)

    async def find_secret(self, settings: Settings) -> str | None:
        """The stored secret, else the one typed into the form (raises ``SecretsError``).

        None for OAuth2 settings: the access token comes from ``tokens``.
        """
        if uses_oauth(settings):
            return None
        try:
            found = await self.secret(settings)
        except secrets.SecretsError:
            typed = self.typed_password()
            if typed:
                return typed
            raise
        return found if found is not None else (self.typed_password() or None)

    def remove_temp_files(self) -> None:
        """Delete the PDFs written for the viewer."""
        for path in self.temp_files:
            path.unlink(missing_ok=True)
        self.temp_files.clear()


def split_addresses(text: str) -> list[str]:
    """``"a@x, b@y"`` → ``["a@x", "b@y"]`` (empty parts dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def format_size(size: int) -> str:
    """``23.4 kB`` (decimal units, as mail clients show them)."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def _amount(value: Decimal, currency: str) -> str:
    return format_money(value, currency)


def document_summary(doc: AnyDocument, library: Library) -> str:
    """The document as a few lines of text: the preview shown in the dialog."""
    contact = library.contacts.get(doc.contact_id)
    lines = [f"{doc.title} · {format_date(doc.issue_date)}"]
    if isinstance(doc, Report):
        names = [library.contacts[c].name for c in doc.recipients if c in library.contacts]
        lines.append(f"For: {', '.join(names)}")
        if doc.subtitle:
            lines.append(doc.subtitle)
        lines.append(" | ".join(doc.columns))
        for row in doc.rows[:8]:
            lines.append(" | ".join(str(cell) for cell in row))
        if len(doc.rows) > 8:
            lines.append(f"… {len(doc.rows) - 8} more rows")
        if doc.totals:
            lines.append(" | ".join(str(cell) for cell in doc.totals))
        return "\n".join(lines)
    lines.append(f"To: {contact.name if contact else doc.contact_id}")
    if doc.reference:
        lines.append(f"Reference: {doc.reference}")
    if isinstance(doc, InvoiceDoc | Quote | PurchaseOrder):
        for line in doc.lines[:8]:
            unit = f" {line.unit}" if line.unit else ""
            lines.append(
                f"  {line.description} — {line.quantity.normalize():f}{unit} × "
                f"{_amount(line.unit_price, doc.currency)} = "
                f"{_amount(doc.line_total(line), doc.currency)}"
            )
        if len(doc.lines) > 8:
            lines.append(f"  … {len(doc.lines) - 8} more lines")
        lines.append(f"Subtotal: {_amount(doc.subtotal, doc.currency)}")
        for tax in doc.taxes:
            if tax.amount:
                lines.append(f"Tax {tax.rate.normalize():f} %: {_amount(tax.amount, doc.currency)}")
        lines.append(f"Total: {_amount(doc.total, doc.currency)}")
        if isinstance(doc, InvoiceDoc):
            lines.append(f"Due: {format_date(doc.due_date)}")
        elif isinstance(doc, Quote):
            lines.append(f"Valid until: {format_date(doc.valid_until)}")
    elif isinstance(doc, Statement):
        lines.append(f"Period: {format_date(doc.period_start)} – {format_date(doc.period_end)}")
        lines.append(f"Opening balance: {_amount(doc.opening_balance, doc.currency)}")
        for entry in doc.entries[:8]:
            lines.append(
                f"  {entry.date.isoformat()} {entry.description}: "
                f"{_amount(entry.amount, doc.currency)}"
            )
        if len(doc.entries) > 8:
            lines.append(f"  … {len(doc.entries) - 8} more entries")
        lines.append(f"Balance: {_amount(doc.closing_balance, doc.currency)}")
    return "\n".join(lines)


def result_words(job: JobResult) -> str:
    """One line for a job's outcome, as the CLI says it."""
    if job.state is EntryState.SENT:
        if job.result is not None:
            queue = f", queue id {job.result.queue_id}" if job.result.queue_id else ""
            refused = "".join(
                f"; REFUSED {address}: {reason}" for address, reason in job.result.refused.items()
            )
            return f"sent to {', '.join(job.result.accepted)}{queue}{refused}"
        return f"sent earlier ({job.note})"
    if job.state is EntryState.FAILED:
        return f"failed: {job.failure or job.note}"
    if job.state is EntryState.UNKNOWN:
        return f"unknown whether delivered: {job.note}"
    if job.failure is not None:
        return f"temporary failure, will retry: {job.failure}"
    return f"not sent ({job.state.value})"


class EmailScreen(ModalScreen[bool]):
    """Email one document; dismisses with True when it was sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="email-send", tooltip="Send the email now"),
        Binding(
            "ctrl+t",
            "toggle_transcript",
            "Transcript",
            id="email-transcript",
            tooltip="Show or hide the SMTP/HTTP transcript",
        ),
        Binding(
            "ctrl+o",
            "open_pdf",
            "Open PDF",
            id="email-open-pdf",
            tooltip="Open the PDF in the system viewer",
        ),
        Binding("escape", "close", "Close / cancel", id="email-close"),
    ]

    sending: reactive[bool] = reactive(False, bindings=True)
    """True while the message is on its way."""
    sent: reactive[bool] = reactive(False, bindings=True)
    """True once the server accepted it (Send is then off)."""
    attachment: reactive[Attachment | None] = reactive(None, bindings=True)
    """The rendered PDF (None until rendered, or when rendering failed)."""

    def __init__(
        self,
        doc: AnyDocument,
        library: Library,
        settings: Settings,
        services: DocumentServices,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.doc = doc
        self.library = library
        self.settings = settings
        self.services = services
        self.draft = draft_email(doc, library, settings)
        """The pre-filled email (the template's subject and body, the contact)."""
        self.result: JobResult | None = None
        """How the last send ended."""
        self.render_error = ""

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="email-dialog"):
            yield Label(f"Email {self.doc.title}", classes="dialog-title", markup=False)
            with VerticalScroll(id="email-fields"):
                yield from self._compose_fields()
            yield Notice(id="email-status")
            with Horizontal(id="email-buttons"):
                yield Button("Send", variant="primary", id="email-send-button", compact=True)
                yield Button("Open PDF", id="email-open-button", compact=True)
                yield Button("Transcript", id="email-transcript-button", compact=True)
                yield Button("Close", id="email-close-button", compact=True)
        yield Footer(compact=True)

    def _compose_fields(self) -> ComposeResult:
        draft = self.draft
        yield Label("To (several: separate with commas)", classes="field-label")
        yield Input(", ".join(draft.to), id="email-to", select_on_focus=False, compact=True)
        yield FieldError("to", id="err-to")
        yield Label("Cc", classes="field-label")
        yield Input(
            ", ".join(draft.cc),
            placeholder="optional, separate with commas",
            id="email-cc",
            select_on_focus=False,
            compact=True,
        )
        yield FieldError("cc", id="err-cc")
        yield Label("Subject", classes="field-label")
        yield Input(draft.subject, id="email-subject", select_on_focus=False, compact=True)
        yield FieldError("subject", id="err-subject")
        yield Static(self._envelope_note(), id="email-envelope", markup=False)
        yield Label("Message", classes="field-label")
        yield TextArea(
            draft.body, id="email-body", soft_wrap=True, show_line_numbers=False, compact=True
        )
        yield FieldError("body", id="err-body")
        yield Static(
            f"Attachment: {draft.attachment_name} (making the PDF…)",
            id="email-attachment",
            markup=False,
        )
        yield Static(document_summary(self.doc, self.library), id="email-preview", markup=False)
        yield Log(id="email-transcript", max_lines=2000)
        with Vertical(id="email-hints-box"):
            yield HintsPanel(id="email-hints")

    def _envelope_note(self) -> str:
        settings = self.settings
        parts = [f"From: {settings.sender}"]
        if settings.reply_to:
            parts.append(f"replies go to {settings.reply_to}")
        if settings.copy_to:
            parts.append(f"a blind copy goes to {settings.copy_to}")
        return "; ".join(parts)

    def on_mount(self) -> None:
        if not self.services.cursor_blink:
            for widget in self.query(Input):
                widget.cursor_blink = False
            self.query_one("#email-body", TextArea).cursor_blink = False
        self.query_one("#email-preview").border_title = "Preview (text)"
        self.query_one("#email-transcript", Log).border_title = "Transcript"
        self.query_one("#email-transcript").display = False
        self.query_one("#email-hints-box").border_title = "Troubleshooting"
        self.query_one("#email-hints-box").display = False
        self.query_one("#email-open-button").display = self.services.viewer() is not None
        self._render_pdf()
        self.query_one("#email-to", Input).focus()

    # ------------------------------------------------------------------ rendering

    @work(thread=True, group="render", exit_on_error=False)
    def _render_pdf(self) -> None:
        try:
            attachment = render_attachment(
                self.doc, self.library, self.settings, creation_date=creation_date_from_env()
            )
        except ValueError as exc:  # MissingGlyphsError, a bad fallback font, SOURCE_DATE_EPOCH
            self.app.call_from_thread(self._rendered, None, str(exc))
            return
        self.app.call_from_thread(self._rendered, attachment, "")

    def _rendered(self, attachment: Attachment | None, error: str) -> None:
        line = self.query_one("#email-attachment", Static)
        self.render_error = error
        if attachment is None:
            line.update(f"Attachment: {self.draft.attachment_name}: cannot make the PDF: {error}")
            line.add_class("-error")
            return
        self.attachment = attachment
        line.update(f"Attachment: {attachment.filename} ({format_size(len(attachment.data))})")

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "send":
            return None if self.sending or self.sent or self.attachment is None else True
        if action == "open_pdf":
            if self.services.viewer() is None:
                return False
            return None if self.attachment is None else True
        return True

    def watch_sending(self, sending: bool) -> None:
        self._sync_buttons()

    def watch_sent(self, sent: bool) -> None:
        self._sync_buttons()

    def watch_attachment(self, attachment: Attachment | None) -> None:
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        if not self.is_mounted:
            return
        send = self.query_one("#email-send-button", Button)
        send.disabled = self.sending or self.sent or self.attachment is None
        self.query_one("#email-open-button", Button).disabled = self.attachment is None
        self.query_one("#email-close-button", Button).label = (
            "Cancel sending" if self.sending else "Close"
        )

    @on(Button.Pressed, "#email-send-button")
    def _send_pressed(self) -> None:
        self.action_send()

    @on(Button.Pressed, "#email-open-button")
    def _open_pressed(self) -> None:
        self.action_open_pdf()

    @on(Button.Pressed, "#email-transcript-button")
    def _transcript_pressed(self) -> None:
        self.action_toggle_transcript()

    @on(Button.Pressed, "#email-close-button")
    def _close_pressed(self) -> None:
        self.action_close()

    def action_toggle_transcript(self) -> None:
        """Show or hide the transcript pane."""
        pane = self.query_one("#email-transcript", Log)
        pane.display = not pane.display
        if pane.display:
            pane.scroll_visible()

    def action_close(self) -> None:
        """Close the dialog; while sending, stop the send at once."""
        if self.sending:
            self.workers.cancel_group(self, "send")
            return
        self.dismiss(self.sent)

    def action_open_pdf(self) -> None:
        """Write the PDF to a private temporary file and hand it to the system viewer."""
        command = self.services.viewer()
        if command is None or self.attachment is None:
            return
        self._open_worker(command, self.attachment)

    @work(thread=True, group="viewer", exit_on_error=False)
    def _open_worker(self, command: list[str], attachment: Attachment) -> None:
        handle, name = tempfile.mkstemp(prefix="smtpdesk-", suffix=f"-{attachment.filename}")
        path = Path(name)  # mkstemp makes it 0600: only this user can read it
        self.services.temp_files.append(path)
        with os.fdopen(handle, "wb") as stream:
            stream.write(attachment.data)
        try:
            # Started through a shell that returns at once: the viewer runs on as an
            # orphan (reaped by init), so neither we nor the app's exit wait for it.
            subprocess.run(
                ["/bin/sh", "-c", '"$@" &', "sh", *command, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self.app.call_from_thread(self._status, f"Cannot open the viewer: {exc}", "error")
            return
        self.app.call_from_thread(self._status, f"Opened {attachment.filename} in the viewer.", "")

    def _status(self, text: str, kind: str) -> None:
        self.query_one("#email-status", Notice).say(text, kind or "info")

    # ------------------------------------------------------------------ sending

    def _clear_errors(self) -> None:
        for error in self.query(FieldError):
            error.show_message("")

    def _show_error(self, message: str) -> None:
        """Put a ``MessageError`` under its field (its text starts with the field)."""
        field_name = message.split(":", 1)[0].strip()
        target = {"to": "to", "cc": "cc", "subject": "subject", "body": "body"}.get(field_name)
        if target is None:
            self._status(message, "error")
            return
        self.query_one(f"#err-{target}", FieldError).show_message(message)

    def action_send(self) -> None:
        """Check the fields, build the message and send it through the send log."""
        if self.sending or self.sent or self.attachment is None:
            return
        self._clear_errors()
        to = split_addresses(self.query_one("#email-to", Input).value)
        cc = split_addresses(self.query_one("#email-cc", Input).value)
        draft = draft_email(
            self.doc,
            self.library,
            self.settings,
            to=to,
            cc=cc,
            subject=self.query_one("#email-subject", Input).value,
            body=self.query_one("#email-body", TextArea).text,
        )
        try:
            outgoing = build_email(draft, self.settings, self.attachment)
        except MessageError as exc:
            self._show_error(str(exc))
            self._status("Not sent: fix the field marked above.", "error")
            return
        job = BatchJob(
            job_id=self.doc.id,
            message=outgoing,
            document_id=self.doc.id,
            recipients=outgoing.recipients,
            subject=draft.subject,
        )
        self.sending = True
        self._send_worker(job)

    def _on_event(self, event: TranscriptEvent) -> None:
        line = neutralise(event.format())
        self.query_one("#email-transcript", Log).write_line(line)
        step = event.step.value.upper()
        self._status(f"Sending… {step}: {neutralise(event.text)[:60]}", "info")

    @work(exclusive=True, group="send", exit_on_error=False)
    async def _send_worker(self, job: BatchJob) -> None:
        log_pane = self.query_one("#email-transcript", Log)
        log_pane.clear()
        self.query_one("#email-hints-box").display = False
        self._status(f"Sending to {', '.join(job.recipients)} … (Escape cancels)", "info")
        try:
            secret = await self.services.find_secret(self.settings)
        except secrets.SecretsError as exc:
            self._status(f"Not sent: no password: {exc}", "error")
            self.sending = False
            return
        try:
            with SendLog() as log:
                report = await send_batch(
                    self.settings,
                    secret,
                    [job],
                    log=log,
                    on_event=self._on_event,
                    backoff=self.services.backoff,
                    max_attempts=self.services.max_attempts,
                    transport_factory=self.services.transport_factory,
                    token_source=self.services.tokens(self.settings),
                )
        except SendLogError as exc:
            self._status(f"Not sent: {exc}", "error")
            return
        except asyncio.CancelledError:
            self._status(
                "Cancelled. If the message was already on its way it is marked 'unknown' "
                "in the send log: check the Sent screen before sending again.",
                "warning",
            )
            raise
        finally:
            self.sending = False
        self.result = report.results[0]
        self._finished(self.result)

    def _finished(self, job: JobResult) -> None:
        words = result_words(job)
        if job.state is EntryState.SENT:
            self.sent = True
            self._status(f"✓ {words[0].upper()}{words[1:]}. Escape closes.", "success")
            return
        kind = "warning" if job.state is EntryState.UNKNOWN else "error"
        self._status(f"✗ {words[0].upper()}{words[1:]}", kind)
        if job.failure is not None and job.failure.hints:
            box = self.query_one("#email-hints-box")
            box.display = True
            self.query_one("#email-hints", HintsPanel).show_hints(
                str(job.failure), job.failure.hints
            )
            box.scroll_visible()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that ends in an unexpected error (a bug, not a failed send)."""
        if event.state is not WorkerState.ERROR:
            return
        if event.worker.group == "send":
            self.sending = False
        self._status(f"Unexpected error: {event.worker.error!r}", "error")


__all__ = [
    "DocumentServices",
    "EmailScreen",
    "SecretLookup",
    "document_summary",
    "find_viewer",
    "format_size",
    "lookup_secret",
    "result_words",
    "split_addresses",
]
