"""The Sent screen: the send log, newest first, filtered by document and by state.

Each row is one entry of ``tui.sendlog.SendLog``: time (local), state,
document, recipients (To, Cc and the blind copy: the envelope), subject and
the server's reply. An ``unknown`` entry (the connection was lost while the
server had the message, or the program died mid-send) is shown as
``UNKNOWN?`` and its details say what to do, never hidden. The highlighted
entry's details (Message-ID, batch, attempts, failure and hints) are below the
table.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static

from screens.widgets import Notice, cell
from tui.sendlog import EntryState, LogEntry, SendLog, SendLogError, default_log_path

ALL = ""
"""The filter value that keeps every entry."""

STATE_LABELS = {
    EntryState.QUEUED: "queued",
    EntryState.SENDING: "sending",
    EntryState.SENT: "sent",
    EntryState.FAILED: "FAILED",
    EntryState.UNKNOWN: "UNKNOWN?",
}


def read_log(document: str = ALL, state: str = ALL) -> tuple[list[LogEntry], list[str], str]:
    """Entries (newest first) for the filters, every document id in the log, and an error."""
    if not default_log_path().exists():
        return [], [], ""
    try:
        with SendLog() as log:
            entries = log.entries(
                document_id=document or None, state=state or None, newest_first=True
            )
            every = log.entries()
    except SendLogError as exc:
        return [], [], str(exc)
    documents = sorted({e.document_id for e in every if e.document_id})
    return entries, documents, ""


def entry_time(entry: LogEntry) -> str:
    """When it was sent (or last changed), local time."""
    return (entry.sent_at or entry.updated_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def entry_details(entry: LogEntry) -> str:
    """Everything about one entry, as plain lines."""
    lines = [
        f"{STATE_LABELS[entry.state]} · {entry.subject}",
        f"to: {', '.join(entry.recipients)}",
    ]
    if entry.reply or entry.queue_id:
        queue = f" (queue id {entry.queue_id})" if entry.queue_id else ""
        lines.append(f"reply: {entry.reply}{queue}")
    if entry.failure and entry.state is not EntryState.SENT:
        lines.append(f"failure: {entry.failure}")
    if entry.state is EntryState.UNKNOWN:
        lines.append(
            "The server may or may not have this message. Check the mailbox (or the "
            "blind copy) before sending it again; to resend: "
            f"smtpdesk send --resume {entry.batch_id} --resend-unknown"
        )
    elif entry.state in (EntryState.QUEUED, EntryState.SENDING):
        lines.append(f"Not sent yet: smtpdesk send --resume {entry.batch_id}")
    attempts = f", {entry.attempts} attempts" if entry.attempts > 1 else ""
    lines.append(f"message-id: {entry.message_id} · batch {entry.batch_id}{attempts}")
    lines.extend(f"• {hint.splitlines()[0]}" for hint in entry.hints)
    return "\n".join(lines)


class SentScreen(Screen[None]):
    """The send log: what went where, when, with the server's reply."""

    BINDING_GROUP_TITLE: str | None = "Sent"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload", id="sent-reload", tooltip="Read the send log again"),
        Binding("escape", "back", "Back", id="sent-back"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: list[LogEntry] = []
        """The entries shown, newest first."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sent-filters"):
            yield Select[str](
                [("All documents", ALL)],
                value=ALL,
                allow_blank=False,
                id="filter-document",
                compact=True,
            )
            yield Select[str](
                [("All states", ALL), *((STATE_LABELS[s], s.value) for s in EntryState)],
                value=ALL,
                allow_blank=False,
                id="filter-state",
                compact=True,
            )
        yield Notice(id="sent-status")
        yield DataTable(id="sent", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="sent-details"):
            yield Static("", id="sent-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "smtpdesk"
        self.sub_title = "sent log"
        table = self.query_one("#sent", DataTable)
        table.add_column("Time", key="time")
        table.add_column("State", key="state")
        table.add_column("Document", key="document")
        table.add_column("Recipients", key="recipients", width=24)
        table.add_column("Subject", key="subject", width=30)
        table.add_column("Reply", key="reply")
        table.focus()
        self.load()

    def _filter(self, widget_id: str) -> str:
        value = self.query_one(f"#{widget_id}", Select).value
        return value if isinstance(value, str) else ALL

    def load(self) -> None:
        """Read the log with the current filters and fill the table."""
        document = self._filter("filter-document")
        state = self._filter("filter-state")
        entries, documents, error = read_log(document, state)
        status = self.query_one("#sent-status", Notice)
        if error:
            status.say(error, "error")
        elif not default_log_path().exists():
            status.say("Nothing sent yet: the send log is empty.", "info")
        elif not entries:
            status.say("No entries match the filters.", "info")
        else:
            status.say("")
        picker = self.query_one("#filter-document", Select)
        options = [("All documents", ALL), *((d, d) for d in documents)]
        if document and document not in documents:
            options.append((document, document))
        with self.prevent(Select.Changed):
            picker.set_options(options)
            picker.value = document
        self.entries = entries
        table = self.query_one("#sent", DataTable)
        table.clear()
        for entry in entries:
            values = (
                entry_time(entry),
                STATE_LABELS[entry.state],
                entry.document_id or "-",
                ", ".join(entry.recipients),
                entry.subject,
                entry.reply or entry.failure,
            )
            table.add_row(*(cell(value) for value in values), key=str(entry.id))
        self._show_details()

    @on(Select.Changed)
    def _filter_changed(self) -> None:
        self.load()

    @on(DataTable.RowHighlighted, "#sent")
    def _highlighted(self) -> None:
        self._show_details()

    def _show_details(self) -> None:
        table = self.query_one("#sent", DataTable)
        detail = self.query_one("#sent-detail", Static)
        if not self.entries or table.cursor_row >= len(self.entries):
            detail.update("")
            return
        detail.update(entry_details(self.entries[max(table.cursor_row, 0)]))

    def action_reload(self) -> None:
        """Read the send log again."""
        self.load()

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.dismiss(None)


__all__ = ["SentScreen", "entry_details", "entry_time", "read_log"]
