"""The send log: every outgoing message recorded before and after it is sent.

One SQLite file (stdlib ``sqlite3``), by default ``data_dir()/sendlog.sqlite3``,
in WAL mode so that readers (the Sent screen, ``smtpdesk log``) never block the
writer and never see a half-written row. Writes go through one connection per
``SendLog`` under a lock, each in a ``BEGIN IMMEDIATE`` transaction with a busy
timeout, so several processes may share the file but only one writes at a time.
``synchronous=FULL``: the "sending" mark must be on disk before the first byte
of the message leaves, or a power cut could make a sent message look unsent.

An entry's life::

    queued ──► sending ──► sent
      ▲           │
      │           ├──► failed           (permanent, or temporary with no attempts left)
      └───────────┤   (temporary failure with attempts left: back to queued)
                  └──► unknown ──► sent | queued   (``resolve``: checked by a person
                                                   or by a delivery check)

The resume rule (the safest one we know: nothing doubled blindly, nothing lost
silently). Each entry gets its Message-ID when it is queued and keeps it for
every attempt; the complete message is stored with the entry once built, so a
resend is byte-for-byte the message that was meant, even if the document file
changed since.

- ``sent``: never sent again.
- ``queued``: the server never took it (not tried, or it answered with a
  definite temporary refusal): sent on resume, same Message-ID.
- ``sending`` found when no batch is running (its process was killed, or the
  task was cancelled mid-message): *ambiguous* — the server may have accepted
  the message just before the crash. It is never resent blindly: it becomes
  ``unknown`` and is reported ("check the mailbox or the archive copy"), unless
  the caller can check delivery by Message-ID (``resume_batch(check_delivered=)``,
  e.g. the sandbox's capture or an archive mailbox) or explicitly asks to resend
  (``resend_unknown=True``: same Message-ID, so mail clients that dedupe by
  Message-ID show it once).
- ``failed``: reported in the run that failed it; not retried on resume.

The same rule covers a connection lost or a timeout during DATA (or while
waiting for an HTTP relay's response): the message may have been taken, so
the entry becomes ``unknown`` instead of being retried.

The message bytes are kept only while they may still be needed (queued,
sending, unknown) and dropped once an entry is final; its size stays. The log
never holds a password: messages carry none, and failures are recorded from
``SendFailure`` fields, which never contain one.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from transports.base import SendResult
from transports.errors import SendFailure
from transports.message import Outgoing

SCHEMA_VERSION = 1
LOG_FILE_NAME = "sendlog.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id      TEXT    NOT NULL,
    job_id        TEXT    NOT NULL,
    document_id   TEXT,
    sender        TEXT    NOT NULL DEFAULT '',
    recipients    TEXT    NOT NULL DEFAULT '[]',
    subject       TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'unknown')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    reply         TEXT    NOT NULL DEFAULT '',
    queue_id      TEXT    NOT NULL DEFAULT '',
    failure_class TEXT    NOT NULL DEFAULT '',
    failure       TEXT    NOT NULL DEFAULT '',
    hints         TEXT    NOT NULL DEFAULT '[]',
    message       BLOB,
    size          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    sent_at       TEXT,
    UNIQUE (batch_id, job_id)
);
CREATE INDEX IF NOT EXISTS sends_document ON sends (document_id, state);
CREATE INDEX IF NOT EXISTS sends_state ON sends (state, batch_id);
"""

_COLUMNS = (
    "id, batch_id, job_id, document_id, sender, recipients, subject, message_id, state, "
    "attempts, reply, queue_id, failure_class, failure, hints, size, created_at, updated_at, "
    "sent_at, message IS NOT NULL"
)


class EntryState(StrEnum):
    """Where an entry is in its life (see the module docstring)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """The server may or may not have the message: check before resending."""

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the entry by itself."""
        return self in (EntryState.SENT, EntryState.FAILED)


class SendLogError(RuntimeError):
    """A send log that cannot be opened or a state change that is not allowed."""


class SendLogBusy(SendLogError):
    """Another batch (in this or another process) is sending with this log."""


@dataclass(frozen=True)
class QueueItem:
    """One message to record as queued."""

    job_id: str
    """Unique within the batch (the document id for document batches)."""
    message_id: str
    """Fixed now and kept for every attempt, including after a crash."""
    document_id: str | None = None
    recipients: Sequence[str] = ()
    subject: str = ""
    sender: str = ""
    message: bytes | None = None
    """The complete message, when it is already built."""


@dataclass(frozen=True)
class LogEntry:
    """One row of the send log."""

    id: int
    batch_id: str
    job_id: str
    document_id: str | None
    sender: str
    recipients: tuple[str, ...]
    """The envelope recipients: To, Cc and the blind copy."""
    subject: str
    message_id: str
    state: EntryState
    attempts: int
    reply: str
    """The server's last reply (the acceptance, or the refusal)."""
    queue_id: str
    failure_class: str
    failure: str
    """The last failure in words (kept after a successful retry, as history)."""
    hints: tuple[str, ...]
    size: int
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    has_message: bool
    """True while the complete message is stored (needed for a resend)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``smtpdesk log --json``."""
        return {
            "id": self.id,
            "batch_id": self.batch_id,
            "job_id": self.job_id,
            "document_id": self.document_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "message_id": self.message_id,
            "state": self.state.value,
            "attempts": self.attempts,
            "reply": self.reply,
            "queue_id": self.queue_id,
            "failure_class": self.failure_class,
            "failure": self.failure,
            "hints": list(self.hints),
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


def default_log_path() -> Path:
    """``data_dir()/sendlog.sqlite3`` (DESIGN.md section 6: the log lives in the data dir)."""
    from tui.paths import data_dir

    return data_dir() / LOG_FILE_NAME


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _row_entry(row: tuple[Any, ...]) -> LogEntry:
    created = _time(row[16])
    updated = _time(row[17])
    assert created is not None and updated is not None  # NOT NULL columns
    return LogEntry(
        id=row[0],
        batch_id=row[1],
        job_id=row[2],
        document_id=row[3],
        sender=row[4],
        recipients=tuple(json.loads(row[5])),
        subject=row[6],
        message_id=row[7],
        state=EntryState(row[8]),
        attempts=row[9],
        reply=row[10],
        queue_id=row[11],
        failure_class=row[12],
        failure=row[13],
        hints=tuple(json.loads(row[14])),
        size=row[15],
        created_at=created,
        updated_at=updated,
        sent_at=_time(row[18]),
        has_message=bool(row[19]),
    )


class SendLog:
    """The send log in one SQLite file (see the module docstring for the rules).

    Args:
        path: the database file; ``default_log_path()`` when omitted. Its folder
            is created (mode 0700) and the file is made private (0600): it holds
            recipients and, until sent, the messages themselves.
        busy_timeout: seconds to wait for another process's write to finish.
        now: the clock, injectable for tests (timezone-aware UTC).

    Safe to share between threads (one connection, one lock). Usable as a
    context manager; ``close()`` when done.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        busy_timeout: float = 5.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path if path is not None else default_log_path()
        self._now = now
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # explicit BEGIN/COMMIT below
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise SendLogError(f"cannot open the send log {self.path}: {exc}") from None
        try:
            self._setup(busy_timeout)
        except sqlite3.Error as exc:
            self._db.close()
            raise SendLogError(f"cannot use the send log {self.path}: {exc}") from None

    def _setup(self, busy_timeout: float) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"WAL mode refused (journal mode is {mode})")
        db.execute("PRAGMA synchronous = FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.OperationalError(
                f"written by a newer smtpdesk (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return  # set up already: opening to read takes no write lock
        with self._write() as cur:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- plumbing ---------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front."""
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # locked past the busy timeout
                raise SendLogError(f"cannot write to the send log {self.path}: {exc}") from None
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            try:
                cur.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                cur.execute("ROLLBACK")
                raise SendLogError(f"cannot write to the send log {self.path}: {exc}") from None

    def _stamp(self) -> str:
        return self._now().astimezone(UTC).isoformat()

    def _change(
        self, entry_id: int, allowed: Sequence[EntryState], sets: str, params: Sequence[Any]
    ) -> LogEntry:
        """Update an entry whose state is one of ``allowed``, or raise SendLogError."""
        marks = ", ".join("?" for _ in allowed)
        with self._write() as cur:
            cur.execute(
                f"UPDATE sends SET {sets}, updated_at = ? WHERE id = ? AND state IN ({marks})",
                (*params, self._stamp(), entry_id, *(s.value for s in allowed)),
            )
            if cur.rowcount != 1:
                row = cur.execute("SELECT state FROM sends WHERE id = ?", (entry_id,)).fetchone()
                found = f"it is {row[0]}" if row else "there is no such entry"
                wanted = " or ".join(s.value for s in allowed)
                raise SendLogError(f"send log entry {entry_id}: expected {wanted}, but {found}")
            row = cur.execute(f"SELECT {_COLUMNS} FROM sends WHERE id = ?", (entry_id,)).fetchone()
        return _row_entry(row)

    # -- writing ----------------------------------------------------------------

    def queue(self, batch_id: str, items: Sequence[QueueItem]) -> list[int]:
        """Record messages as queued; returns their entry ids, in order.

        Idempotent per ``(batch_id, job_id)``: an item already in the batch keeps
        its entry (and its Message-ID and state) and its id is returned again.
        """
        now = self._stamp()
        ids: list[int] = []
        with self._write() as cur:
            for item in items:
                found = cur.execute(
                    "SELECT id FROM sends WHERE batch_id = ? AND job_id = ?",
                    (batch_id, item.job_id),
                ).fetchone()
                if found:
                    ids.append(found[0])
                    continue
                cur.execute(
                    "INSERT INTO sends (batch_id, job_id, document_id, sender, recipients,"
                    " subject, message_id, message, size, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        batch_id,
                        item.job_id,
                        item.document_id,
                        item.sender,
                        json.dumps(list(item.recipients)),
                        item.subject,
                        item.message_id,
                        item.message,
                        len(item.message or b""),
                        now,
                        now,
                    ),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    def mark_sending(self, entry_id: int, outgoing: Outgoing | None = None) -> LogEntry:
        """Record that an attempt starts; with ``outgoing``, store the message first.

        The Message-ID of ``outgoing`` must be the one the entry was queued with.
        """
        if outgoing is None:
            return self._change(
                entry_id, [EntryState.QUEUED], "state = 'sending', attempts = attempts + 1", []
            )
        current = self.entry(entry_id)
        if outgoing.message_id != current.message_id:
            raise SendLogError(
                f"send log entry {entry_id}: message {outgoing.message_id} is not the queued "
                f"{current.message_id}"
            )
        data = outgoing.as_bytes()
        return self._change(
            entry_id,
            [EntryState.QUEUED],
            "state = 'sending', attempts = attempts + 1, sender = ?, recipients = ?,"
            " subject = ?, message = ?, size = ?",
            [
                outgoing.sender,
                json.dumps(list(outgoing.recipients)),
                str(outgoing.message.get("Subject", "")),
                data,
                len(data),
            ],
        )

    def mark_sent(self, entry_id: int, result: SendResult) -> LogEntry:
        """Record the server's acceptance (drops the stored message, keeps its size)."""
        reply = result.reply
        if result.refused:
            refused = "; ".join(f"{addr}: {why}" for addr, why in result.refused.items())
            reply = f"{reply} (refused: {refused})"
        return self._change(
            entry_id,
            [EntryState.SENDING],
            "state = 'sent', reply = ?, queue_id = ?, sent_at = ?, message = NULL",
            [reply, result.queue_id, self._stamp()],
        )

    def mark_failed(self, entry_id: int, failure: SendFailure, final: bool) -> LogEntry:
        """Record a failed attempt: ``final`` → failed; otherwise back to queued for a retry.

        A queued entry may also fail for good without an attempt (its message
        could not be built, or the connection could not be opened at all).
        """
        reply = " ".join(p for p in (str(failure.reply_code or ""), failure.reply_text) if p)
        sets = "state = ?, reply = ?, failure_class = ?, failure = ?, hints = ?"
        if final:
            sets += ", message = NULL"
        state = EntryState.FAILED if final else EntryState.QUEUED
        return self._change(
            entry_id,
            [EntryState.SENDING, EntryState.QUEUED] if final else [EntryState.SENDING],
            sets,
            [
                state.value,
                reply,
                failure.failure_class.value,
                str(failure),
                json.dumps(list(failure.hints)),
            ],
        )

    def mark_unknown(self, entry_id: int, reason: str) -> LogEntry:
        """Record that an attempt ended without knowing whether the server took it."""
        return self._change(
            entry_id, [EntryState.SENDING], "state = 'unknown', failure = ?", [reason]
        )

    def resolve(self, entry_id: int, *, delivered: bool, note: str = "") -> LogEntry:
        """Settle an ambiguous (``unknown``) entry.

        Args:
            entry_id: the entry.
            delivered: True when the message was found (in the recipient's or the
                archive mailbox, or the sandbox): the entry becomes ``sent``.
                False: it becomes ``queued`` again, to be resent with the same
                Message-ID by the next resume.
            note: how it was settled, kept as the entry's reply.
        """
        if delivered:
            return self._change(
                entry_id,
                [EntryState.UNKNOWN],
                "state = 'sent', reply = ?, sent_at = ?, message = NULL",
                [note or "delivery confirmed after an interrupted send", self._stamp()],
            )
        return self._change(
            entry_id,
            [EntryState.UNKNOWN],
            "state = 'queued', reply = ?",
            [note or "not delivered: to be resent"],
        )

    def recover(self, batch_id: str) -> list[LogEntry]:
        """Turn the batch's ``sending`` entries into ``unknown`` (their sender is gone).

        Call only when no process is sending this batch (the batch engine holds
        a run lock while it sends). Returns the entries changed.
        """
        changed: list[LogEntry] = []
        for entry in self.entries(batch_id=batch_id, state=EntryState.SENDING):
            changed.append(
                self.mark_unknown(
                    entry.id,
                    "interrupted while sending: the server may have accepted it; "
                    "check the mailbox (or the archive copy) before resending",
                )
            )
        return changed

    @contextmanager
    def sending_lock(self) -> Iterator[None]:
        """Held while a batch sends: one sender per log, and proof that it is alive.

        An exclusive ``flock`` on ``<log>.lock``; the kernel releases it when the
        process dies, even by SIGKILL, so an entry found in ``sending`` while the
        lock is free was left by a sender that is gone. Raises ``SendLogBusy``
        (naming the holder's pid) when another batch holds it.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                raise SendLogBusy(
                    f"another batch is sending with the send log {self.path} (pid {holder}); "
                    "wait for it to finish"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------

    def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[LogEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM sends {where} {tail}", tuple(params)
            ).fetchall()
        return [_row_entry(row) for row in rows]

    def entry(self, entry_id: int) -> LogEntry:
        """One entry by id (SendLogError when there is none)."""
        found = self._select("WHERE id = ?", [entry_id])
        if not found:
            raise SendLogError(f"send log entry {entry_id}: there is no such entry")
        return found[0]

    def entries(
        self,
        *,
        document_id: str | None = None,
        state: EntryState | str | None = None,
        batch_id: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[LogEntry]:
        """Entries, oldest first (or newest first), filtered by document, state and batch."""
        clauses: list[str] = []
        params: list[Any] = []
        if document_id is not None:
            clauses.append("document_id = ?")
            params.append(document_id)
        if state is not None:
            clauses.append("state = ?")
            params.append(EntryState(state).value)
        if batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(batch_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = "ORDER BY id DESC" if newest_first else "ORDER BY id"
        if limit is not None:
            tail += f" LIMIT {int(limit)}"
        return self._select(where, params, tail)

    def pending(self, batch_id: str) -> list[LogEntry]:
        """The batch's entries that are not final: queued, sending and unknown."""
        return self._select(
            "WHERE batch_id = ? AND state IN ('queued', 'sending', 'unknown')",
            [batch_id],
            "ORDER BY id",
        )

    def state_counts(self, batch_id: str) -> dict[EntryState, int]:
        """How many of the batch's entries are in each state (every state present, maybe 0).

        Counted by SQLite through the ``sends_state`` index: a progress bar asks after
        every message, and reading the whole batch each time grew with its size.
        """
        counts = dict.fromkeys(EntryState, 0)
        states = ", ".join(f"'{state.value}'" for state in EntryState)
        with self._lock:
            rows = self._db.execute(
                f"SELECT state, COUNT(*) FROM sends WHERE state IN ({states}) AND batch_id = ?"
                " GROUP BY state",
                (batch_id,),
            ).fetchall()
        for state, count in rows:
            counts[EntryState(state)] = count
        return counts

    def unfinished_batches(self) -> list[str]:
        """Batches with entries that are not final, oldest first (candidates for resume)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id FROM sends WHERE state IN ('queued', 'sending', 'unknown')"
                " GROUP BY batch_id ORDER BY MIN(id)"
            ).fetchall()
        return [row[0] for row in rows]

    def last_emailed(self, document_id: str) -> datetime | None:
        """When the document was last sent successfully, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(sent_at) FROM sends WHERE document_id = ? AND state = 'sent'",
                (document_id,),
            ).fetchone()
        return _time(row[0]) if row else None

    def message(self, entry_id: int) -> bytes | None:
        """The stored message of an entry (None once it is final, or before it is built)."""
        with self._lock:
            row = self._db.execute("SELECT message FROM sends WHERE id = ?", (entry_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def journal_mode(self) -> str:
        """The SQLite journal mode in use (``wal``)."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # -- lifetime ---------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SendLog {self.path}>"
