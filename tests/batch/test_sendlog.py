"""The send log: states and transitions, WAL mode, queries, concurrency, the run lock."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from transports.base import SendResult
from transports.errors import FailureClass, SendFailure
from transports.events import Step
from transports.message import build_message
from transports.settings import Settings
from tui.sendlog import (
    EntryState,
    QueueItem,
    SendLog,
    SendLogBusy,
    SendLogError,
)


class Ticker:
    """A clock that moves one minute per reading."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(minutes=1)
        return self.at


@pytest.fixture
def clock() -> Ticker:
    return Ticker()


@pytest.fixture
def log(tmp_path: Path, clock: Ticker) -> Iterator[SendLog]:
    with SendLog(tmp_path / "data" / "sendlog.sqlite3", now=clock) as opened:
        yield opened


def settings() -> Settings:
    return Settings.model_validate(
        {"smtp": {"host": "127.0.0.1", "port": 2525, "username": "billing@acme.test"}}
    )


def item(job: str, document: str | None = None) -> QueueItem:
    return QueueItem(
        job_id=job,
        message_id=f"<{job}@acme.test>",
        document_id=document,
        recipients=("customer@example.test",),
        subject=f"Invoice {job}",
        sender="billing@acme.test",
    )


def accepted(queue_id: str = "ABC123") -> SendResult:
    return SendResult(
        message_id="<x@acme.test>",
        queue_id=queue_id,
        reply=f"250 2.0.0 OK: queued as {queue_id}",
        accepted=("customer@example.test",),
    )


def refused(retryable: bool) -> SendFailure:
    return SendFailure(
        FailureClass.TEMPORARY if retryable else FailureClass.RECIPIENT_REJECTED,
        Step.RCPT,
        "Recipient refused",
        reply_code=451 if retryable else 550,
        reply_text="4.3.0 try later" if retryable else "5.1.1 no such user",
        hints=("Check the address.",),
        retryable=retryable,
    )


def test_file_is_private_and_in_wal_mode(log: SendLog, tmp_path: Path) -> None:
    assert log.journal_mode() == "wal"
    mode = stat.S_IMODE(os.stat(log.path).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(log.path.parent).st_mode) == 0o700
    # Another connection sees the persistent WAL mode too.
    other = sqlite3.connect(log.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_queue_records_everything_and_is_idempotent(log: SendLog) -> None:
    ids = log.queue("b1", [item("INV-1", "inv-1"), item("INV-2")])
    assert len(ids) == 2
    first = log.entry(ids[0])
    assert first.state is EntryState.QUEUED
    assert first.batch_id == "b1" and first.job_id == "INV-1" and first.document_id == "inv-1"
    assert first.recipients == ("customer@example.test",)
    assert first.subject == "Invoice INV-1"
    assert first.message_id == "<INV-1@acme.test>"
    assert first.attempts == 0 and first.sent_at is None
    assert log.entry(ids[1]).document_id is None  # an ad-hoc send
    # The same job again in the same batch keeps its entry (and its Message-ID).
    again = log.queue("b1", [item("INV-2"), item("INV-3")])
    assert again[0] == ids[1]
    assert len(log.entries(batch_id="b1")) == 3


def test_sent_path_records_reply_and_drops_the_stored_message(log: SendLog) -> None:
    outgoing = build_message(
        settings(),
        to=["customer@example.test"],
        subject="Invoice INV-9",
        body="Hello",
        message_id="<INV-9@acme.test>",
    )
    (entry_id,) = log.queue("b1", [item("INV-9")])
    sending = log.mark_sending(entry_id, outgoing)
    assert sending.state is EntryState.SENDING and sending.attempts == 1
    assert sending.has_message and log.message(entry_id) == outgoing.as_bytes()
    assert sending.size == len(outgoing.as_bytes())
    sent = log.mark_sent(entry_id, accepted("Q42"))
    assert sent.state is EntryState.SENT
    assert sent.queue_id == "Q42" and sent.reply == "250 2.0.0 OK: queued as Q42"
    assert sent.sent_at is not None and sent.sent_at > sent.created_at
    assert not sent.has_message and log.message(entry_id) is None
    assert sent.size == len(outgoing.as_bytes())


def test_mark_sending_refuses_another_message_id(log: SendLog) -> None:
    outgoing = build_message(settings(), to=["a@example.test"], subject="s", body="b")
    (entry_id,) = log.queue("b1", [item("INV-1")])
    with pytest.raises(SendLogError, match="is not the queued"):
        log.mark_sending(entry_id, outgoing)
    assert log.entry(entry_id).state is EntryState.QUEUED


def test_temporary_failure_goes_back_to_queued_then_final(log: SendLog) -> None:
    (entry_id,) = log.queue("b1", [item("INV-1")])
    log.mark_sending(entry_id)
    retry = log.mark_failed(entry_id, refused(True), final=False)
    assert retry.state is EntryState.QUEUED
    assert retry.failure_class == "temporary" and retry.reply == "451 4.3.0 try later"
    log.mark_sending(entry_id)
    failed = log.mark_failed(entry_id, refused(False), final=True)
    assert failed.state is EntryState.FAILED and failed.attempts == 2
    assert failed.failure_class == "recipient_rejected"
    assert failed.failure == "Recipient refused"
    assert failed.hints == ("Check the address.",)


def test_invalid_transitions_are_refused(log: SendLog) -> None:
    (entry_id,) = log.queue("b1", [item("INV-1")])
    with pytest.raises(SendLogError, match="expected sending, but it is queued"):
        log.mark_sent(entry_id, accepted())
    log.mark_sending(entry_id)
    log.mark_sent(entry_id, accepted())
    with pytest.raises(SendLogError, match="it is sent"):
        log.mark_sending(entry_id)
    with pytest.raises(SendLogError, match="it is sent"):
        log.mark_failed(entry_id, refused(False), final=True)
    with pytest.raises(SendLogError, match="no such entry"):
        log.mark_sending(999)


def test_unknown_entries_are_settled_by_resolve(log: SendLog) -> None:
    a, b = log.queue("b1", [item("A"), item("B")])
    for entry_id in (a, b):
        log.mark_sending(entry_id)
    assert [e.id for e in log.recover("b1")] == [a, b]
    assert log.entry(a).state is EntryState.UNKNOWN
    assert "may have accepted" in log.entry(a).failure
    delivered = log.resolve(a, delivered=True, note="found in the archive")
    assert delivered.state is EntryState.SENT and delivered.reply == "found in the archive"
    assert delivered.sent_at is not None
    again = log.resolve(b, delivered=False)
    assert again.state is EntryState.QUEUED
    with pytest.raises(SendLogError):
        log.resolve(a, delivered=True)


def test_last_emailed_is_the_latest_successful_send(log: SendLog, clock: Ticker) -> None:
    assert log.last_emailed("inv-1") is None
    first, failed, second = log.queue(
        "b1", [item("1", "inv-1"), item("2", "inv-1"), item("3", "inv-2")]
    )
    log.mark_sending(first)
    log.mark_sent(first, accepted())
    when_first = log.entry(first).sent_at
    log.mark_sending(failed)
    log.mark_failed(failed, refused(False), final=True)
    assert log.last_emailed("inv-1") == when_first  # a failure is not an email sent
    (later,) = log.queue("b2", [item("1", "inv-1")])
    log.mark_sending(later)
    log.mark_sent(later, accepted())
    last = log.last_emailed("inv-1")
    assert last is not None and when_first is not None and last > when_first
    assert last == log.entry(later).sent_at
    assert last.tzinfo is not None
    assert log.last_emailed("inv-2") is None


def test_filters(log: SendLog) -> None:
    a, b, c = log.queue("b1", [item("A", "inv-1"), item("B", "inv-2"), item("C", "inv-1")])
    (d,) = log.queue("b2", [item("D", "inv-1")])
    log.mark_sending(a)
    log.mark_sent(a, accepted())
    log.mark_sending(b)
    log.mark_failed(b, refused(False), final=True)
    assert [e.id for e in log.entries(document_id="inv-1")] == [a, c, d]
    assert [e.id for e in log.entries(state=EntryState.SENT)] == [a]
    assert [e.id for e in log.entries(state="failed")] == [b]
    assert [e.id for e in log.entries(document_id="inv-1", state="queued")] == [c, d]
    assert [e.id for e in log.entries(batch_id="b2")] == [d]
    assert [e.id for e in log.entries(newest_first=True, limit=2)] == [d, c]
    assert [e.id for e in log.pending("b1")] == [c]
    assert log.unfinished_batches() == ["b1", "b2"]
    with pytest.raises(ValueError):
        log.entries(state="lost")
    assert log.entry(a).to_dict()["state"] == "sent"


def test_state_counts_are_per_batch_and_follow_every_change(log: SendLog) -> None:
    a, b, c, d, e = log.queue("b1", [item(job) for job in "ABCDE"])
    log.queue("b2", [item("A"), item("B")])
    zero = dict.fromkeys(EntryState, 0)
    assert log.state_counts("b1") == {**zero, EntryState.QUEUED: 5}
    assert log.state_counts("nothing") == zero
    log.mark_sending(a)
    log.mark_sent(a, accepted())
    log.mark_sending(b)
    log.mark_failed(b, refused(False), final=True)
    log.mark_sending(c)
    log.mark_unknown(c, "lost")
    log.mark_sending(d)
    counts = log.state_counts("b1")
    assert counts == {
        EntryState.QUEUED: 1,
        EntryState.SENDING: 1,
        EntryState.SENT: 1,
        EntryState.FAILED: 1,
        EntryState.UNKNOWN: 1,
    }
    for state, count in counts.items():
        assert len(log.entries(batch_id="b1", state=state)) == count
    log.resolve(c, delivered=False)
    assert log.state_counts("b1")[EntryState.QUEUED] == 2
    assert log.state_counts("b2") == {**zero, EntryState.QUEUED: 2}
    assert e in [entry.id for entry in log.entries(batch_id="b1", state="queued")]


def test_a_reader_is_not_blocked_by_the_writer_and_sees_only_commits(
    log: SendLog, tmp_path: Path
) -> None:
    (entry_id,) = log.queue("b1", [item("A")])
    reader = SendLog(log.path)
    # Hold the write lock with a transaction that is not committed yet.
    writer = sqlite3.connect(log.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE sends SET state = 'sending' WHERE id = ?", (entry_id,))
    seen: list[EntryState] = []
    thread = threading.Thread(target=lambda: seen.append(reader.entry(entry_id).state))
    thread.start()
    thread.join(timeout=2)
    assert seen == [EntryState.QUEUED]  # read at once, the uncommitted change unseen
    # A second writer waits for the busy timeout, then says so plainly.
    impatient = SendLog(log.path, busy_timeout=0.1)
    with pytest.raises(SendLogError, match="cannot write to the send log"):
        impatient.mark_sending(entry_id)
    writer.execute("COMMIT")
    writer.close()
    assert reader.entry(entry_id).state is EntryState.SENDING
    impatient.close()
    reader.close()


def test_a_reader_in_another_process(log: SendLog) -> None:
    (entry_id,) = log.queue("b1", [item("A", "inv-7")])
    log.mark_sending(entry_id)
    log.mark_sent(entry_id, accepted("Q7"))
    code = (
        "import sys; from pathlib import Path; from tui.sendlog import SendLog\n"
        "log = SendLog(Path(sys.argv[1]))\n"
        "print([(e.job_id, e.state.value, e.queue_id) for e in log.entries()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(log.path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout.strip() == "[('A', 'sent', 'Q7')]"


def test_sending_lock_is_exclusive_and_dies_with_its_process(log: SendLog) -> None:
    with log.sending_lock():
        with pytest.raises(SendLogBusy, match=f"pid {os.getpid()}"):
            with log.sending_lock():
                pass
    with log.sending_lock():
        pass  # released
    code = (
        "import sys, time; from pathlib import Path; from tui.sendlog import SendLog\n"
        "log = SendLog(Path(sys.argv[1]))\n"
        "with log.sending_lock():\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(log.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(SendLogBusy, match=f"pid {child.pid}"):
            with log.sending_lock():
                pass
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    with log.sending_lock():
        pass  # the kernel released the killed holder's lock


def test_a_log_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sendlog.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(SendLogError, match="newer smtpdesk"):
        SendLog(path)


def test_default_path_is_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with SendLog() as log:
        assert log.path == tmp_path / "xdg" / "smtpdesk" / "sendlog.sqlite3"
        assert log.path.exists()
