"""The batch engine against a scripted transport: retries, back-off, cancel, resume.

The end-to-end tests (real SMTP transport and sandbox) are in
``test_batch_sandbox.py``; these pin the engine's decisions one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from transports.base import SendResult
from transports.errors import FailureClass, SendFailure
from transports.events import Step
from transports.message import Outgoing, build_message
from transports.settings import Settings
from tui.batch import BatchJob, BatchProgress, BatchReport, resume_batch, send_batch
from tui.sendlog import EntryState, LogEntry, QueueItem, SendLog, SendLogBusy, SendLogError

from .fake import FakeServer, disconnected, permanent, temporary


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SendLog]:
    with SendLog(tmp_path / "sendlog.sqlite3") as opened:
        yield opened


SETTINGS = Settings.model_validate(
    {
        "preset": "custom",
        "copy_to": "archive@acme.test",
        "smtp": {"host": "127.0.0.1", "port": 2525, "username": "billing@acme.test"},
    }
)


def builder(subject: str) -> BatchJob:
    """A job whose message is built lazily for the Message-ID the engine gives."""

    def build(message_id: str) -> Outgoing:
        return build_message(
            SETTINGS,
            to=["customer@example.test"],
            subject=subject,
            body=f"Please find {subject}.",
            message_id=message_id,
        )

    return BatchJob(job_id=subject, message=build, document_id=subject.lower())


def jobs(n: int) -> list[BatchJob]:
    return [builder(f"INV-{i:02d}") for i in range(1, n + 1)]


class Sleeps:
    """A sleep that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def run(
    server: FakeServer,
    log: SendLog,
    job_list: list[BatchJob],
    sleeps: Sleeps | None = None,
    **kwargs: object,
) -> BatchReport:
    return await send_batch(
        SETTINGS,
        "secret",
        job_list,
        log=log,
        sleep=sleeps or Sleeps(),
        transport_factory=server.factory,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_all_sent_over_one_connection_with_progress(log: SendLog) -> None:
    server = FakeServer()
    progress: list[BatchProgress] = []
    report = await send_batch(
        SETTINGS,
        "secret",
        jobs(5),
        log=log,
        on_progress=progress.append,
        transport_factory=server.factory,
        batch_id="b1",
    )
    assert report.ok and report.batch_id == "b1"
    assert report.connections == 1 and server.connections == 1 and server.closed == 1
    assert [r.job_id for r in report.results] == [f"INV-{i:02d}" for i in range(1, 6)]
    assert all(r.result is not None and r.attempts == 1 for r in report.results)
    # Each message went once, with the Message-ID the log gave it at queue time.
    for result in report.results:
        assert server.count(result.message_id) == 1
    entries = log.entries(batch_id="b1")
    assert [e.state for e in entries] == [EntryState.SENT] * 5
    assert entries[0].recipients == ("customer@example.test", "archive@acme.test")
    assert entries[0].subject == "INV-01" and entries[0].queue_id == "Q1"
    assert entries[0].document_id == "inv-01"
    assert (progress[0].total, progress[0].remaining, progress[0].sent) == (5, 5, 0)
    last = progress[-1]
    assert (last.sent, last.failed, last.retrying, last.remaining) == (5, 0, 0, 0)
    assert [p.sent for p in progress if p.last] == [1, 2, 3, 4, 5]


async def test_progress_does_not_read_the_whole_batch_for_each_message(
    log: SendLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every entry after each message made a batch quadratic (~6.6 ms a message
    at 500); the counts come from the log's state counts, the same numbers."""
    read: list[int] = []
    original = SendLog.entries

    def counting(self: SendLog, **kwargs: Any) -> list[LogEntry]:
        found = original(self, **kwargs)
        read.append(len(found))
        return found

    monkeypatch.setattr(SendLog, "entries", counting)
    progress: list[BatchProgress] = []
    report = await send_batch(
        SETTINGS,
        "secret",
        jobs(40),
        log=log,
        on_progress=progress.append,
        transport_factory=FakeServer().factory,
        batch_id="b1",
    )
    assert report.ok and len(progress) == 42
    assert sum(read) <= 3 * 40  # queueing and the report read the batch, not each progress
    assert [(p.total, p.sent, p.remaining) for p in progress[:2]] == [(40, 0, 40), (40, 1, 39)]
    assert (progress[-1].sent, progress[-1].remaining) == (40, 0)


async def test_temporary_failures_are_retried_later_with_backoff(log: SendLog) -> None:
    def script(subject: str, attempt: int) -> SendFailure | None:
        if subject == "INV-02" and attempt <= 2:
            return temporary()
        return None

    server = FakeServer(script=script)
    sleeps = Sleeps()
    report = await send_batch(
        SETTINGS,
        "secret",
        jobs(4),
        log=log,
        sleep=sleeps,
        transport_factory=server.factory,
        backoff=(1, 4, 10),
    )
    assert report.ok
    assert server.attempts["INV-02"] == 3
    assert sum(server.attempts.values()) == 6
    # The failing job did not hold up the others.
    assert server.order == ["INV-01", "INV-02", "INV-03", "INV-04", "INV-02", "INV-02"]
    assert sleeps.delays == pytest.approx([1, 4], abs=0.5)
    assert server.connections == 1  # a 451 keeps the connection
    entry = log.entries(document_id="inv-02")[0]
    assert entry.state is EntryState.SENT and entry.attempts == 3
    assert entry.failure_class == "temporary"  # the history of the retries is kept


async def test_permanent_failure_is_reported_with_hints_and_not_retried(log: SendLog) -> None:
    server = FakeServer(script=lambda s, a: permanent() if s == "INV-02" else None)
    report = await run(server, log, jobs(3))
    assert server.attempts["INV-02"] == 1
    (failed,) = report.failed
    assert failed.job_id == "INV-02" and failed.state is EntryState.FAILED
    assert failed.failure is not None
    assert failed.failure.failure_class is FailureClass.RECIPIENT_REJECTED
    assert failed.failure.hints, "hints are filled in for the class and preset"
    assert "Thunderbird" in failed.failure.hints[-1]
    entry = log.entries(document_id="inv-02")[0]
    assert entry.state is EntryState.FAILED and entry.reply == "550 5.1.1 no such user"
    assert entry.hints == failed.failure.hints
    assert len(report.sent) == 2


async def test_retries_are_bounded(log: SendLog) -> None:
    server = FakeServer(script=lambda s, a: temporary() if s == "INV-01" else None)
    sleeps = Sleeps()
    report = await run(server, log, jobs(2), sleeps, max_attempts=3, backoff=(2,))
    assert server.attempts["INV-01"] == 3
    assert sleeps.delays == pytest.approx([2, 2], abs=0.5)  # the last back-off value repeats
    (failed,) = report.failed
    assert failed.attempts == 3 and failed.failure is not None and failed.failure.retryable


async def test_lost_connection_before_data_reconnects_and_retries(log: SendLog) -> None:
    server = FakeServer(
        script=lambda s, a: disconnected(Step.MAIL) if (s, a) == ("INV-02", 1) else None
    )
    report = await run(server, log, jobs(3))
    assert report.ok
    assert server.connections == 2 and report.connections == 2
    assert server.aborted == 1
    assert server.attempts["INV-02"] == 2


async def test_lost_connection_during_data_is_unknown_not_resent(log: SendLog) -> None:
    # The server took INV-02, then the connection broke before its reply.
    server = FakeServer(
        script=lambda s, a: ("after", disconnected(Step.DATA)) if s == "INV-02" else None
    )
    report = await run(server, log, jobs(3))
    (unknown,) = report.unknown
    assert unknown.job_id == "INV-02" and "may have accepted" in unknown.note
    assert server.count(unknown.message_id) == 1  # not sent twice
    assert server.attempts["INV-02"] == 1
    assert len(report.sent) == 2
    assert log.entry(unknown.entry_id).has_message  # kept: a resend needs it


async def test_connection_that_cannot_open_fails_every_job_with_hints(log: SendLog) -> None:
    auth = SendFailure(FailureClass.AUTH_FAILED, Step.AUTH, "Login refused", reply_code=535)
    server = FakeServer(open_failures=[auth])
    report = await run(server, log, jobs(3))
    assert server.connections == 1
    assert [r.state for r in report.results] == [EntryState.FAILED] * 3
    assert all(
        r.failure is not None
        and r.failure.failure_class is FailureClass.AUTH_FAILED
        and r.failure.hints
        for r in report.results
    )
    assert not server.received


async def test_temporary_failure_to_connect_is_retried(log: SendLog) -> None:
    busy = SendFailure(
        FailureClass.TEMPORARY, Step.GREETING, "Busy", reply_code=421, retryable=True
    )
    server = FakeServer(open_failures=[busy])
    sleeps = Sleeps()
    report = await run(server, log, jobs(2), sleeps)
    assert report.ok and server.connections == 2
    assert sleeps.delays == [1]


async def test_a_job_that_cannot_be_built_fails_alone(log: SendLog) -> None:
    def broken(message_id: str) -> Outgoing:
        raise ValueError("INV-02.json line 3: total does not add up")

    job_list = jobs(3)
    job_list[1] = BatchJob(job_id="INV-02", message=broken)
    report = await run(FakeServer(), log, job_list)
    (failed,) = report.failed
    assert failed.job_id == "INV-02" and failed.failure is not None
    assert "does not add up" in failed.failure.detail
    assert len(report.sent) == 2


async def test_ready_messages_and_async_builders(log: SendLog) -> None:
    ready = build_message(SETTINGS, to=["x@example.test"], subject="Ready", body="b")

    async def later(message_id: str) -> Outgoing:
        await asyncio.sleep(0)
        return build_message(
            SETTINGS, to=["y@example.test"], subject="Later", body="b", message_id=message_id
        )

    server = FakeServer()
    report = await run(
        server, log, [BatchJob("ready", ready), BatchJob("later", later, recipients=["y"])]
    )
    assert report.ok
    assert report.results[0].message_id == ready.message_id
    assert server.received[0][2] == ready.as_bytes()


async def test_a_ready_message_is_sent_as_given_and_a_changed_one_never_replaces_the_stored(
    log: SendLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built job's message is stored at queue time; in the same run it is sent as the
    object given (parsing the stored bytes back cost ~2 ms a message). On resume, a job
    whose message differs from the stored bytes does not replace them."""
    import tui.batch as batch

    parsed: list[str] = []
    original = batch._stored_outgoing

    def counting(entry: LogEntry, data: bytes) -> Outgoing:
        parsed.append(entry.job_id)
        return original(entry, data)

    monkeypatch.setattr(batch, "_stored_outgoing", counting)
    ready = [
        build_message(SETTINGS, to=["x@example.test"], subject=f"R{i}", body="b") for i in (1, 2)
    ]
    server = FakeServer()
    report = await run(server, log, [BatchJob(f"r{i}", m) for i, m in enumerate(ready)])
    assert report.ok and parsed == []
    assert [data for _, _, data in server.received] == [m.as_bytes() for m in ready]

    meant = build_message(SETTINGS, to=["x@example.test"], subject="Meant", body="b")
    log.queue(
        "b2",
        [
            QueueItem(
                job_id="j",
                message_id=meant.message_id,
                recipients=meant.recipients,
                sender=meant.sender,
                message=meant.as_bytes(),
            )
        ],
    )
    changed = build_message(
        SETTINGS, to=["x@example.test"], subject="Changed", body="b", message_id=meant.message_id
    )
    again = await resume_batch(
        "b2",
        SETTINGS,
        "secret",
        log=log,
        jobs=[BatchJob("j", changed)],
        transport_factory=server.factory,
    )
    assert again.ok and parsed == ["j"]
    assert server.received[-1][2] == meant.as_bytes() != changed.as_bytes()


async def test_duplicate_job_ids_are_refused(log: SendLog) -> None:
    with pytest.raises(ValueError, match="appears twice"):
        await run(FakeServer(), log, [builder("A"), builder("A")])


async def test_one_batch_at_a_time_per_log(log: SendLog) -> None:
    with log.sending_lock():
        with pytest.raises(SendLogBusy):
            await run(FakeServer(), log, jobs(1))


async def test_cancel_stops_after_the_current_message_and_resume_finishes(
    log: SendLog,
) -> None:
    cancel = asyncio.Event()
    server = FakeServer()

    def on_progress(progress: BatchProgress) -> None:
        if progress.sent == 2:
            cancel.set()

    report = await send_batch(
        SETTINGS,
        "secret",
        jobs(5),
        log=log,
        on_progress=on_progress,
        cancel=cancel,
        transport_factory=server.factory,
        batch_id="b1",
    )
    assert report.cancelled and len(report.sent) == 2 and len(report.not_sent) == 3
    assert server.closed == 1
    assert [e.state for e in log.pending("b1")] == [EntryState.QUEUED] * 3
    again = await resume_batch(
        "b1", SETTINGS, "secret", log=log, jobs=jobs(5), transport_factory=server.factory
    )
    assert again.ok and len(again.results) == 5
    assert sorted(s for _, s, _ in server.received) == [f"INV-{i:02d}" for i in range(1, 6)]


async def test_cancel_interrupts_a_backoff_wait(log: SendLog) -> None:
    cancel = asyncio.Event()
    server = FakeServer(script=lambda s, a: temporary())

    async def slow_sleep(delay: float) -> None:
        cancel.set()
        await asyncio.sleep(30)

    report = await asyncio.wait_for(
        send_batch(
            SETTINGS,
            "secret",
            jobs(1),
            log=log,
            sleep=slow_sleep,
            cancel=cancel,
            transport_factory=server.factory,
        ),
        timeout=5,
    )
    assert report.cancelled and server.attempts["INV-01"] == 1
    assert report.not_sent[0].state is EntryState.QUEUED


async def test_task_cancelled_mid_message_aborts_and_leaves_it_unknown(log: SendLog) -> None:
    server = FakeServer(delay=0.05)
    progress: list[BatchProgress] = []
    task = asyncio.create_task(
        send_batch(
            SETTINGS,
            "secret",
            jobs(3),
            log=log,
            on_progress=progress.append,
            transport_factory=server.factory,
            batch_id="b1",
        )
    )
    while not any(p.sent == 1 for p in progress):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)  # INV-02 is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.aborted == 1
    states = [e.state for e in log.entries(batch_id="b1")]
    assert states == [EntryState.SENT, EntryState.UNKNOWN, EntryState.QUEUED]
    # Without a way to check, the ambiguous one is reported, not resent.
    report = await resume_batch(
        "b1", SETTINGS, "secret", log=log, jobs=jobs(3), transport_factory=server.factory
    )
    assert [r.state for r in report.results] == states[:1] + [
        EntryState.UNKNOWN,
        EntryState.SENT,
    ]
    assert server.attempts["INV-02"] == 1
    # Told it never arrived, the next resume sends it with the same Message-ID.
    mid = report.results[1].message_id
    final = await resume_batch(
        "b1",
        SETTINGS,
        "secret",
        log=log,
        check_delivered=lambda message_id: server.count(message_id) > 0,
        transport_factory=server.factory,
    )
    assert final.ok and server.count(mid) == 1


def crash_mid_batch(log: SendLog, server: FakeServer, n: int, *, taken: bool) -> list[str]:
    """What a SIGKILL leaves: some sent, one in `sending`, the rest queued (no process)."""
    job_list = jobs(n)
    ids = log.queue(
        "crashed",
        [
            QueueItem(
                job_id=j.job_id, message_id=f"<{j.job_id}@acme.test>", document_id=j.document_id
            )
            for j in job_list
        ],
    )
    message_ids = [log.entry(i).message_id for i in ids]
    for index, entry_id in enumerate(ids[:3]):
        make = job_list[index].message
        assert not isinstance(make, Outgoing)
        built = make(message_ids[index])
        assert isinstance(built, Outgoing)
        log.mark_sending(entry_id, built)
        if index < 2 or taken:
            server.received.append((built.message_id, job_list[index].job_id, built.as_bytes()))
        if index < 2:
            log.mark_sent(entry_id, SendResult(built.message_id, "Q", "250 OK", built.recipients))
    return message_ids


@pytest.mark.parametrize("taken", [True, False])
async def test_resume_after_a_crash_checks_the_ambiguous_one(log: SendLog, taken: bool) -> None:
    server = FakeServer()
    message_ids = crash_mid_batch(log, server, 6, taken=taken)
    checked: list[str] = []

    async def check(message_id: str) -> bool:
        checked.append(message_id)
        return server.count(message_id) > 0

    report = await resume_batch(
        "crashed",
        SETTINGS,
        "secret",
        log=log,
        jobs=jobs(6),
        check_delivered=check,
        transport_factory=server.factory,
    )
    assert checked == [message_ids[2]]
    assert report.ok and len(report.results) == 6
    for message_id in message_ids:
        assert server.count(message_id) == 1  # nothing lost, nothing doubled
    # The stored bytes of the interrupted message were resent as they were.
    if not taken:
        assert server.attempts["INV-03"] == 1
    third = log.entries(batch_id="crashed")[2]
    assert third.reply == ("found by the delivery check" if taken else "250 2.0.0 OK: queued as Q3")


async def test_resume_can_resend_the_ambiguous_on_request(log: SendLog) -> None:
    server = FakeServer()
    message_ids = crash_mid_batch(log, server, 4, taken=False)
    report = await resume_batch(
        "crashed",
        SETTINGS,
        "secret",
        log=log,
        jobs=jobs(4),
        resend_unknown=True,
        transport_factory=server.factory,
    )
    assert report.ok
    assert [server.count(m) for m in message_ids] == [1, 1, 1, 1]


async def test_resume_without_jobs_sends_stored_messages_and_reports_the_rest(
    log: SendLog,
) -> None:
    server = FakeServer()
    message_ids = crash_mid_batch(log, server, 5, taken=False)
    report = await resume_batch(
        "crashed",
        SETTINGS,
        "secret",
        log=log,
        resend_unknown=True,
        transport_factory=server.factory,
    )
    assert server.count(message_ids[2]) == 1  # stored, so it could be resent
    assert [r.state for r in report.not_sent] == [EntryState.QUEUED] * 2
    assert not report.ok


async def test_resume_of_an_unknown_batch(log: SendLog) -> None:
    with pytest.raises(SendLogError, match="no batch"):
        await resume_batch("nope", SETTINGS, "secret", log=log)


async def test_the_next_message_is_built_while_the_current_one_is_sent(log: SendLog) -> None:
    """Look-ahead of one: job k's message (a PDF rendered in a thread, in real use)
    is built while job k-1 is being sent, never earlier (memory stays flat)."""
    server = FakeServer(delay=0.02)
    seen: dict[str, tuple[int, int]] = {}

    def threaded(subject: str) -> BatchJob:
        async def build(message_id: str) -> Outgoing:
            seen[subject] = (len(server.order), len(server.received))  # started, done
            return await asyncio.to_thread(
                build_message,
                SETTINGS,
                to=["customer@example.test"],
                subject=subject,
                body="b",
                message_id=message_id,
            )

        return BatchJob(job_id=subject, message=build)

    subjects = [f"INV-{i:02d}" for i in range(1, 6)]
    report = await run(server, log, [threaded(s) for s in subjects])
    assert report.ok and server.order == subjects
    assert seen["INV-01"] == (0, 0)
    for k, subject in enumerate(subjects[1:], start=2):
        assert seen[subject] == (k - 1, k - 2), subject


async def test_a_failing_look_ahead_build_fails_its_own_job_in_turn(log: SendLog) -> None:
    async def broken(message_id: str) -> Outgoing:
        raise ValueError("INV-02.json line 3: total does not add up")

    job_list = jobs(3)
    job_list[1] = BatchJob(job_id="INV-02", message=broken)
    server = FakeServer(delay=0.01)
    report = await run(server, log, job_list)
    (failed,) = report.failed
    assert failed.job_id == "INV-02" and failed.failure is not None
    assert "does not add up" in failed.failure.detail
    assert server.order == ["INV-01", "INV-03"]
