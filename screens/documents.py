"""The Documents screen: the documents folder as a table, Email one, or email many.

The table (type, number, contact, date, total, last emailed, and the result of
the last send from this screen) is filled from ``tui.documents.load_folder``
and the send log's ``last_emailed``, loaded in a thread. Files that cannot be
loaded are listed above the table as ``file:line: message``; the others are
still shown.

Email (``e``) opens ``screens.email.EmailScreen`` on the highlighted document.
Before settings are saved (no settings file, or one that does not load) the
Email actions are shown dimmed in the footer and a line says why; the state is
read again whenever the screen comes back to the front, so they appear right
after the settings are saved.

Batch: space marks documents, ``b`` emails the marked ones in one
``tui.batch.send_batch`` (one connection, temporary failures retried with
back-off, each send in the send log) with a progress bar and a per-document
result; the highlighted row's failure shows its hints. Escape stops the batch
after the current message (the batch's cancel event); what was not sent stays
queued in the send log (``smtpdesk send --resume``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Log, ProgressBar, Static
from textual.worker import Worker, WorkerState

from screens.email import DocumentServices, EmailScreen, result_words
from screens.sent import SentScreen
from screens.widgets import HintsPanel, Notice, cell
from transports.events import TranscriptEvent
from transports.settings import Settings
from tui import paths, secrets
from tui.batch import BatchProgress, BatchReport, JobResult, send_batch
from tui.documents import (
    AnyDocument,
    Library,
    Problem,
    ensure_documents_folder,
    format_money,
    load_folder,
)
from tui.emailing import creation_date_from_env, document_job
from tui.sendlog import EntryState, SendLog, SendLogError, default_log_path
from tui.store import StoreError
from tui.terminal import neutralise

KIND_LABELS = {
    "invoice": "Invoice",
    "quote": "Quote",
    "purchase_order": "Order",
    "statement": "Statement",
    "report": "Report",
}
"""Short type names for the table (80 columns are few)."""

MARK = "●"


@dataclass(frozen=True)
class Loaded:
    """What the screen shows, read in a thread."""

    settings: Settings | None
    """The saved settings, or None: Email is off."""
    why_off: str
    """Why Email is off ('' when it is on)."""
    library: Library | None
    folder: Path
    folder_error: str = ""
    last_emailed: dict[str, datetime | None] = field(default_factory=dict)


def documents_folder(services: DocumentServices, settings: Settings) -> tuple[Path, bool]:
    """The folder and whether it is the default one (seeded with the samples on first use).

    ``--documents`` > ``SMTPDESK_DOCUMENTS`` > ``[documents] folder`` > the data dir,
    as ``smtpdesk documents list`` resolves it.
    """
    folder = paths.documents_dir(services.documents_dir, settings.documents.folder)
    default = (
        services.documents_dir is None
        and not os.environ.get(paths.DOCUMENTS_ENV)
        and not settings.documents.folder
    )
    return folder, default


def load_state(services: DocumentServices) -> Loaded:
    """Settings state, the documents folder and the send log's dates (blocking: a thread)."""
    store = services.store
    saved: Settings | None = None
    why_off = ""
    if not store.exists():
        why_off = (
            "Email is off until the settings are saved: there is no settings file yet "
            f"({display_path(store.path)}). Fill in the form, test, and save (ctrl+s)."
        )
        base = Settings.unconfigured()
    else:
        try:
            saved = store.load()
            base = saved
        except StoreError as exc:
            why_off = f"Email is off: the settings file cannot be used. {exc}"
            base = Settings.unconfigured()
    folder, default = documents_folder(services, base)
    try:
        if default:
            ensure_documents_folder(folder)
        elif not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            return Loaded(saved, why_off, None, folder, f"{folder}: the documents folder {what}")
    except OSError as exc:
        return Loaded(saved, why_off, None, folder, f"{folder}: cannot create it: {exc}")
    library = load_folder(folder, business_name=base.from_name)
    last: dict[str, datetime | None] = {}
    if default_log_path().exists():
        try:
            with SendLog() as log:
                last = {doc_id: log.last_emailed(doc_id) for doc_id in library.documents}
        except SendLogError:
            last = {}
    return Loaded(saved, why_off, library, folder, "", last)


def display_path(path: Path) -> str:
    """The path with the home folder shown as ``~`` (shorter, and the same for every user)."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def problem_text(problem: Problem, folder: Path) -> str:
    """``documents/INV-9.json:4: message``: the file relative to the documents folder."""
    try:
        name = str(problem.file.relative_to(folder))
    except ValueError:
        name = str(problem.file)
    where = f"{name}:{problem.line}" if problem.line is not None else name
    return f"{where}: {problem.message}"


def local_time(value: datetime | None) -> str:
    """``2026-11-27 10:15`` in local time, or ``never``."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "never"


def short_result(job: JobResult, running: bool = False) -> str:
    """The table's result cell for a job (``running``: its batch is still going)."""
    if job.state is EntryState.SENT:
        return "✓ sent"
    if job.state is EntryState.FAILED:
        return "✗ failed"
    if job.state is EntryState.UNKNOWN:
        return "? unknown"
    if not running:
        return "not sent"
    if job.failure is not None:
        return f"↻ retry {job.attempts}"
    return "queued"


class DocumentsScreen(Screen[None]):
    """The documents folder: Email one document, or the marked ones in one batch."""

    BINDING_GROUP_TITLE: str | None = "Documents"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "email", "Email", id="email", tooltip="Email the highlighted document"),
        Binding(
            "space",
            "mark",
            "Mark",
            id="mark",
            key_display="space",
            tooltip="Mark or unmark for Email marked",
        ),
        Binding(
            "b",
            "email_marked",
            "Email marked",
            id="email-marked",
            tooltip="Email every marked document over one connection",
        ),
        Binding("a", "mark_all", "Mark all", id="mark-all", show=False),
        Binding("l", "sent_log", "Sent", id="sent-log", tooltip="What was sent, when, where"),
        Binding("t", "toggle_transcript", "Transcript", id="batch-transcript"),
        Binding("r", "reload", "Reload", id="reload", show=False, tooltip="Read the folder again"),
        Binding(
            "escape",
            "cancel_batch",
            "Stop batch",
            id="cancel-batch",
            priority=True,
            tooltip="Stop after the current message",
        ),
        Binding("escape", "back", "Back", id="documents-back", tooltip="Back to the settings"),
    ]

    sending: reactive[bool] = reactive(False, bindings=True)
    """True while a batch runs."""
    email_on: reactive[bool] = reactive(False, bindings=True)
    """True when saved settings exist (Email is possible)."""

    def __init__(self, services: DocumentServices, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.loaded: Loaded | None = None
        self.marked: list[str] = []
        """Marked document ids, in the order they were marked."""
        self.results: dict[str, JobResult] = {}
        """The last result of each document sent from this screen."""
        self.report: BatchReport | None = None
        """The last batch's report."""
        self._cancel: asyncio.Event | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="documents-body"):
            yield Notice(id="email-off")
            yield Notice(id="folder-problems")
            yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="batch-row"):
                yield ProgressBar(id="batch-progress", show_eta=False)
                yield Label("", id="batch-counts", markup=False)
            yield Notice(id="batch-status")
            with VerticalScroll(id="doc-details"):
                yield Static("", id="doc-summary", markup=False)
                yield HintsPanel(id="doc-hints")
            yield Log(id="batch-transcript", max_lines=5000)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "smtpdesk"
        self.sub_title = "documents"
        table = self.query_one("#documents", DataTable)
        # The result column comes early: at 80 columns it must stay in view during a batch
        # (the total and the last-emailed date of the highlighted row are in the details).
        table.add_column(" ", key="mark", width=1)
        table.add_column("Result", key="result", width=9)
        table.add_column("Type", key="type")
        table.add_column("Number", key="number")
        table.add_column("Contact", key="contact", width=18)
        table.add_column("Date", key="date")
        table.add_column("Total", key="total")
        table.add_column("Last emailed", key="last")
        self.query_one("#batch-row").display = False
        self.query_one("#batch-transcript", Log).border_title = "Batch transcript"
        self.query_one("#batch-transcript").display = False
        table.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        # Back from the Email dialog or the settings: saved settings and dates may be new.
        if self.loaded is not None and not self.sending:
            self.reload()

    def on_unmount(self) -> None:
        self.services.remove_temp_files()

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="load", exit_on_error=False)
    async def reload(self) -> None:
        """Read settings, folder and send log (in a thread), then fill the table."""
        loaded = await asyncio.to_thread(load_state, self.services)
        self._apply(loaded)

    def _apply(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.email_on = loaded.settings is not None
        self.query_one("#email-off", Notice).say(loaded.why_off, "warning")
        problems = self.query_one("#folder-problems", Notice)
        library = loaded.library
        if library is None:
            problems.say(loaded.folder_error, "error")
        elif library.problems:
            count = len(library.problems)
            head = f"{count} file{'s' if count != 1 else ''} skipped (the rest are listed):"
            lines = [problem_text(p, loaded.folder) for p in library.problems]
            problems.say("\n".join([head, *lines]), "error")
        else:
            problems.say("")
        table = self.query_one("#documents", DataTable)
        highlighted = self.current_id()
        table.clear()
        docs = self.documents()
        self.marked = [doc_id for doc_id in self.marked if library and doc_id in library.documents]
        for doc in docs:
            table.add_row(*(cell(value) for value in self._cells(doc)), key=doc.id)
        if highlighted is not None and library is not None and highlighted in library.documents:
            table.move_cursor(row=table.get_row_index(highlighted))
        self.sub_title = f"documents: {display_path(loaded.folder)}" if library else "documents"
        self._show_details()
        self.refresh_bindings()

    def documents(self) -> list[AnyDocument]:
        """The documents shown, by date then id (as ``smtpdesk documents list``)."""
        library = self.loaded.library if self.loaded else None
        if library is None:
            return []
        return sorted(library.documents.values(), key=lambda d: (d.issue_date, d.id))

    def _cells(self, doc: AnyDocument) -> list[str]:
        assert self.loaded is not None and self.loaded.library is not None
        contact = self.loaded.library.contacts.get(doc.contact_id)
        total = doc.total
        result = self.results.get(doc.id)
        return [
            MARK if doc.id in self.marked else "",
            short_result(result, self.sending) if result else "",
            KIND_LABELS.get(doc.kind, doc.kind),
            doc.number,
            contact.name if contact else doc.contact_id,
            doc.issue_date.isoformat(),
            format_money(total, doc.currency) if total is not None else "",
            local_time(self.loaded.last_emailed.get(doc.id)),
        ]

    def current_id(self) -> str | None:
        """The highlighted document's id."""
        table = self.query_one("#documents", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no cursor row (an empty table)
            return None
        return str(key.value) if key.value is not None else None

    def current_document(self) -> AnyDocument | None:
        doc_id = self.current_id()
        library = self.loaded.library if self.loaded else None
        if doc_id is None or library is None:
            return None
        return library.documents.get(doc_id)

    def _set_cell(self, doc_id: str, column: str, value: str) -> None:
        table = self.query_one("#documents", DataTable)
        if doc_id in table.rows:
            table.update_cell(doc_id, column, cell(value), update_width=False)

    @on(DataTable.RowHighlighted, "#documents")
    def _row_highlighted(self) -> None:
        self._show_details()

    def _show_details(self) -> None:
        """The highlighted document in one line, and its failure's hints."""
        summary = self.query_one("#doc-summary", Static)
        hints = self.query_one("#doc-hints", HintsPanel)
        doc = self.current_document()
        if doc is None or self.loaded is None or self.loaded.library is None:
            summary.update("No documents." if self.loaded and self.loaded.library else "")
            hints.show_hints("", ())
            return
        library = self.loaded.library
        to = ", ".join(library.recipients(doc)) or "no address"
        total = doc.total
        amount = f" · {format_money(total, doc.currency)}" if total is not None else ""
        emailed = local_time(self.loaded.last_emailed.get(doc.id))
        line = f"{doc.title}{amount} → {to} · last emailed {emailed}"
        result = self.results.get(doc.id)
        if result is not None:
            line += f"\nResult: {result_words(result)}"
        summary.update(line)
        failure = result.failure if result is not None else None
        if failure is not None and result is not None and result.state is not EntryState.SENT:
            hints.show_hints("", failure.hints)
        else:
            hints.show_hints("", ())

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_batch":
            return self.sending
        if action == "back":
            return not self.sending
        if action == "email":
            return True if self.email_on and not self.sending and self.documents() else None
        if action == "email_marked":
            return True if self.email_on and not self.sending and self.marked else None
        if action in ("mark", "mark_all"):
            return None if self.sending else True
        if action == "toggle_transcript":
            # There is a transcript once a batch has started (keeps the footer short).
            return self.sending or self.report is not None
        return True

    def action_back(self) -> None:
        """Back to the screen below (the settings)."""
        self.dismiss(None)

    def action_reload(self) -> None:
        """Read the folder and the settings again."""
        if not self.sending:
            self.reload()

    def action_mark(self) -> None:
        """Mark or unmark the highlighted document, then move down."""
        doc_id = self.current_id()
        if doc_id is None or self.sending:
            return
        if doc_id in self.marked:
            self.marked.remove(doc_id)
        else:
            self.marked.append(doc_id)
        self._set_cell(doc_id, "mark", MARK if doc_id in self.marked else "")
        self.query_one("#documents", DataTable).action_cursor_down()
        self.refresh_bindings()

    def action_mark_all(self) -> None:
        """Mark every document (or unmark all when all are marked)."""
        ids = [doc.id for doc in self.documents()]
        self.marked = [] if set(ids) <= set(self.marked) else ids
        for doc_id in ids:
            self._set_cell(doc_id, "mark", MARK if doc_id in self.marked else "")
        self.refresh_bindings()

    def action_sent_log(self) -> None:
        """Open the Sent screen."""
        self.app.push_screen(SentScreen())

    def action_toggle_transcript(self) -> None:
        """Show or hide the batch transcript."""
        pane = self.query_one("#batch-transcript", Log)
        pane.display = not pane.display

    def action_email(self) -> None:
        """Open the Email dialog on the highlighted document."""
        doc = self.current_document()
        if doc is None or self.loaded is None or self.loaded.library is None:
            return
        if self.loaded.settings is None:
            self.notify(self.loaded.why_off, severity="warning", markup=False)
            return

        def done(sent: bool | None) -> None:
            if sent:
                self.results.pop(doc.id, None)

        self.app.push_screen(
            EmailScreen(doc, self.loaded.library, self.loaded.settings, self.services), done
        )

    def action_email_marked(self) -> None:
        """Email the marked documents in one batch over one connection."""
        if self.sending or not self.marked or self.loaded is None:
            return
        if self.loaded.settings is None or self.loaded.library is None:
            return
        library = self.loaded.library
        docs = [library.documents[d] for d in self.marked if d in library.documents]
        self.sending = True
        self.report = None
        self._batch_worker(docs, library, self.loaded.settings)

    def action_cancel_batch(self) -> None:
        """Stop the batch after the message being sent now."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.query_one("#batch-status", Notice).say(
                "Stopping after the current message…", "warning"
            )

    # ------------------------------------------------------------------ batch

    def _on_event(self, event: TranscriptEvent) -> None:
        self.query_one("#batch-transcript", Log).write_line(neutralise(event.format()))

    def _on_progress(self, progress: BatchProgress) -> None:
        bar = self.query_one("#batch-progress", ProgressBar)
        done = progress.sent + progress.failed + progress.unknown
        bar.update(total=progress.total, progress=done)
        counts = f"{done}/{progress.total} · sent {progress.sent} · failed {progress.failed}"
        if progress.retrying:
            counts += f" · retrying {progress.retrying}"
        if progress.unknown:
            counts += f" · unknown {progress.unknown}"
        self.query_one("#batch-counts", Label).update(counts)
        last = progress.last
        if last is not None and last.document_id is not None:
            self.results[last.document_id] = last
            self._set_cell(last.document_id, "result", short_result(last, running=True))
        if progress.current is not None:
            self._set_cell(progress.current, "result", "… sending")
        self._show_details()

    @work(exclusive=True, group="batch", exit_on_error=False)
    async def _batch_worker(
        self, docs: list[AnyDocument], library: Library, settings: Settings
    ) -> None:
        status = self.query_one("#batch-status", Notice)
        self.query_one("#batch-transcript", Log).clear()
        self.query_one("#batch-row").display = True
        bar = self.query_one("#batch-progress", ProgressBar)
        bar.update(total=len(docs), progress=0)
        self.query_one("#batch-counts", Label).update(f"0/{len(docs)}")
        for doc in docs:
            self.results.pop(doc.id, None)
            self._set_cell(doc.id, "result", "queued")
        count = len(docs)
        status.say(
            f"Sending {count} document{'s' if count != 1 else ''} over one connection… "
            "(Escape stops after the current one)",
            "info",
        )
        self._cancel = asyncio.Event()
        try:
            try:
                secret = await self.services.find_secret(settings)
                creation_date = creation_date_from_env()
            except (secrets.SecretsError, ValueError) as exc:
                status.say(f"Not sent: {exc}", "error")
                return
            jobs = [
                document_job(doc, library, settings, creation_date=creation_date) for doc in docs
            ]
            try:
                with SendLog() as log:
                    report = await send_batch(
                        settings,
                        secret,
                        jobs,
                        log=log,
                        on_event=self._on_event,
                        on_progress=self._on_progress,
                        cancel=self._cancel,
                        backoff=self.services.backoff,
                        max_attempts=self.services.max_attempts,
                        transport_factory=self.services.transport_factory,
                        token_source=self.services.tokens(settings),
                    )
            except SendLogError as exc:
                status.say(f"Not sent: {exc}", "error")
                return
        finally:
            self._cancel = None
            self.sending = False
        self._batch_done(report)

    def _batch_done(self, report: BatchReport) -> None:
        self.report = report
        for job in report.results:
            if job.document_id is None:
                continue
            self.results[job.document_id] = job
            self._set_cell(job.document_id, "result", short_result(job))
        sent = {job.document_id for job in report.sent}
        self.marked = [doc_id for doc_id in self.marked if doc_id not in sent]
        counts: dict[str, int] = {}
        for job in report.results:
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in counts.items())
        connections = f"{report.connections} connection{'s' if report.connections != 1 else ''}"
        text = f"Batch {report.batch_id}: {summary} ({connections})."
        if report.cancelled:
            text = f"Stopped. {text}"
        if report.not_sent:
            text += f" Not sent yet: resume with `smtpdesk send --resume {report.batch_id}`."
        if report.unknown:
            text += " Check the mailbox for the unknown ones (the Sent log, l, lists them)."
        kind = "success" if report.ok else ("warning" if not report.failed else "error")
        self.query_one("#batch-status", Notice).say(text, kind)
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that ends in an unexpected error (a bug, not a failed send)."""
        if event.state is not WorkerState.ERROR:
            return
        if event.worker.group == "batch":
            self.sending = False
        self.query_one("#batch-status", Notice).say(
            f"Unexpected error: {event.worker.error!r}", "error"
        )


__all__ = ["DocumentsScreen", "Loaded", "documents_folder", "load_state"]
