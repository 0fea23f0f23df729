"""End to end: the batch engine over the real SMTP transport into the sandbox.

Every count here is taken from the far side: messages captured by the sandbox
(matched by Message-ID) and connections seen by its SMTP server (aiosmtpd logs
one "Peer:" record per connection).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from transports.errors import FailureClass
from transports.events import Direction, Step, TranscriptEvent
from tui.batch import BatchProgress, resume_batch, send_batch
from tui.sandbox import SMTP_LOGGER, CapturedMessage, Fault, Faults, Sandbox, Stage
from tui.sendlog import EntryState, SendLog

from .killed_batch import make_jobs

ROOT = Path(__file__).resolve().parents[2]


def message_id(captured: CapturedMessage) -> str:
    parsed = email.message_from_bytes(captured.data, policy=email.policy.default)
    return str(parsed["Message-ID"])


def captured_ids(sandbox: Sandbox) -> Counter[str]:
    return Counter(message_id(m) for m in sandbox.messages)


async def test_batch_of_30_with_temporary_and_permanent_refusals(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # aiosmtpd logs to "mail.log"; the sandbox forwards those records to SMTP_LOGGER.
    caplog.set_level(logging.INFO, logger="mail.log")
    caplog.set_level(logging.INFO, logger=SMTP_LOGGER)
    sandbox.faults = Faults(
        Fault("rcpt", "451 4.3.0 try later", "customer05@example.test", times=2),
        Fault("rcpt", "451 4.7.1 greylisted", "customer11@example.test", times=1),
        Fault("rcpt", "451 4.3.0 try later", "customer23@example.test", times=2),
        Fault("rcpt", "550 5.1.1 no such user", "customer17@example.test"),
    )
    settings = sandbox.settings("starttls", timeout=5)
    events: list[TranscriptEvent] = []
    progress: list[BatchProgress] = []
    with SendLog(tmp_path / "sendlog.sqlite3") as log:
        report = await send_batch(
            settings,
            sandbox.password,
            make_jobs(settings, 30),
            log=log,
            on_event=events.append,
            on_progress=progress.append,
            batch_id="b30",
            backoff=(0.05, 0.1),
        )
        entries = {e.job_id: e for e in log.entries(batch_id="b30")}

    # The report: 29 sent, the 550 failed with its hints.
    assert len(report.results) == 30
    assert len(report.sent) == 29 and not report.unknown and not report.not_sent
    (failed,) = report.failed
    assert failed.job_id == "INV-0017" and failed.failure is not None
    assert failed.failure.failure_class is FailureClass.RECIPIENT_REJECTED
    assert failed.failure.reply_code == 550 and failed.failure.hints

    # The right retries: attempts per job, in the report and in the log.
    attempts = {r.job_id: r.attempts for r in report.results}
    expected = {f"INV-{n:04d}": 1 for n in range(1, 31)}
    expected.update({"INV-0005": 3, "INV-0011": 2, "INV-0023": 3})
    assert attempts == expected
    assert {job: e.attempts for job, e in entries.items()} == expected

    # The log shows each result.
    for result in report.results:
        entry = entries[result.job_id]
        assert entry.state is result.state
        assert entry.message_id == result.message_id
    assert entries["INV-0017"].state is EntryState.FAILED
    assert entries["INV-0017"].reply == "550 5.1.1 no such user"
    assert entries["INV-0017"].failure_class == "recipient_rejected"
    assert entries["INV-0005"].failure_class == "temporary"  # its retries are on record
    assert entries["INV-0001"].recipients == ("customer01@example.test",)

    # Every other message arrived exactly once, as the log says.
    arrived = captured_ids(sandbox)
    assert sum(arrived.values()) == 29
    by_queue_id = {m.queue_id: message_id(m) for m in sandbox.messages}
    for job, entry in entries.items():
        if job == "INV-0017":
            assert arrived[entry.message_id] == 0
        else:
            assert arrived[entry.message_id] == 1
            assert by_queue_id[entry.queue_id] == entry.message_id

    # One connection: one greeting on the client side, one peer on the server side.
    peers = [r for r in caplog.records if r.getMessage().startswith("Peer:")]
    assert len(peers) == 1
    greetings = [e for e in events if e.step is Step.GREETING and e.direction is Direction.IN]
    assert len(greetings) == 1 and report.connections == 1

    last = progress[-1]
    assert (last.total, last.sent, last.failed, last.retrying, last.remaining) == (30, 29, 1, 0, 0)
    assert max(p.retrying for p in progress) >= 1


@pytest.mark.parametrize("kill_at", ["after-capture", "before-data"])
async def test_killed_mid_batch_then_resumed_sends_everything_exactly_once(
    sandbox: Sandbox, tmp_path: Path, kill_at: str
) -> None:
    """SIGKILL the sending process mid-batch; resume in the test.

    ``after-capture``: killed while the sandbox holds the 5th message but before
    it answered 250 (the sender recorded ``sending``, never ``sent``).
    ``before-data``: killed at the 5th message's RCPT (the server never had it).
    Either way the entry is ambiguous to the resumer; the delivery check
    settles it, so nothing is lost and nothing doubled.
    """
    count, kill_on = 12, 5
    settings = sandbox.settings("starttls", timeout=5)
    log_path = tmp_path / "sendlog.sqlite3"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.batch.killed_batch",
        str(log_path),
        "killed",
        str(count),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    rcpts = 0

    def kill_on_capture(captured: CapturedMessage) -> None:
        if len(sandbox.messages) == kill_on:
            os.kill(child.pid, signal.SIGKILL)

    def kill_on_rcpt(stage: Stage, address: str, attempt: int) -> str | None:
        nonlocal rcpts
        if stage == "rcpt":
            rcpts += 1
            if rcpts == kill_on:
                os.kill(child.pid, signal.SIGKILL)
                return "451 4.3.0 the client is gone anyway"
        return None

    if kill_at == "after-capture":
        sandbox.on_message = kill_on_capture
    else:
        sandbox.faults = kill_on_rcpt
    stdin = f"{settings.model_dump_json()}\n{sandbox.password}\n".encode()
    out, err = await asyncio.wait_for(child.communicate(stdin), timeout=60)
    assert child.returncode == -signal.SIGKILL, (out, err)
    sandbox.on_message = None
    sandbox.faults = None

    before = captured_ids(sandbox)
    assert sum(before.values()) == (kill_on if kill_at == "after-capture" else kill_on - 1)
    with SendLog(log_path) as log:
        states = Counter(e.state for e in log.entries(batch_id="killed"))
        # What the kill left: some sent, the 5th in flight, the rest queued.
        assert states[EntryState.SENDING] == 1
        assert states[EntryState.SENT] == kill_on - 1
        assert states[EntryState.QUEUED] == count - kill_on
        interrupted = log.entries(batch_id="killed", state=EntryState.SENDING)[0]
        assert interrupted.job_id == f"INV-{kill_on:04d}" and interrupted.has_message
        stored = log.message(interrupted.id)

        checked: list[str] = []

        def delivered(mid: str) -> bool:
            checked.append(mid)
            return captured_ids(sandbox)[mid] > 0

        report = await resume_batch(
            "killed",
            settings,
            sandbox.password,
            log=log,
            jobs=make_jobs(settings, count),
            check_delivered=delivered,
        )
        entries = log.entries(batch_id="killed")

    assert checked == [interrupted.message_id]
    assert report.ok and len(report.results) == count and report.connections == 1
    assert all(e.state is EntryState.SENT for e in entries)
    arrived = captured_ids(sandbox)
    assert {e.message_id: arrived[e.message_id] for e in entries} == {
        e.message_id: 1 for e in entries
    }
    assert sum(arrived.values()) == count
    settled = next(e for e in entries if e.id == interrupted.id)
    if kill_at == "after-capture":
        assert settled.reply == "found by the delivery check" and settled.attempts == 1
    else:
        assert settled.reply.startswith("250 ") and settled.attempts == 2
    # What arrived for it is the message stored before the kill, byte for byte.
    (arrived_once,) = [m for m in sandbox.messages if message_id(m) == interrupted.message_id]
    assert arrived_once.data == stored


async def test_batch_over_the_http_relay_retries_a_busy_relay(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The relay answers 503 to the first two requests, then accepts.
    sandbox.faults = Faults(Fault("http", "503 relay busy", times=2))
    settings = sandbox.settings("http", timeout=5)
    with SendLog(tmp_path / "sendlog.sqlite3") as log:
        report = await send_batch(
            settings,
            sandbox.http_key,
            make_jobs(settings, 6),
            log=log,
            backoff=(0.05,),
        )
        entries = log.entries(batch_id=report.batch_id)
    assert report.ok
    assert [r.attempts for r in report.results] == [2, 2, 1, 1, 1, 1]
    assert entries[0].failure_class == "http_server_error"
    assert len(sandbox.messages) == 6  # the two refused requests left nothing behind
    arrived = captured_ids(sandbox)
    assert {e.message_id: arrived[e.message_id] for e in entries} == {
        e.message_id: 1 for e in entries
    }
    assert {e.queue_id for e in entries} == {m.queue_id for m in sandbox.messages}
