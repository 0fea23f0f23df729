"""Sending many messages over one connection, with retries and crash-safe resume.

``send_batch`` records every job in the send log (``tui.sendlog``) as queued,
then sends them in order over one transport opened once (reopened only after a
lost connection), recording each attempt before and after:

- accepted → ``sent``;
- a temporary failure (4xx, a connection lost before DATA: ``retryable``) →
  back to ``queued`` and retried later in the batch after a back-off
  (``backoff[n-1]`` seconds after the n-th failure), while the other jobs go on;
  after ``max_attempts`` attempts it is ``failed``;
- a permanent failure → ``failed``, with the hints for its class and preset;
- a connection lost or a timeout during DATA (or while waiting for an HTTP
  relay's answer) → ``unknown``: the server may have taken it, so it is not
  retried blindly (see the resume rule in ``tui.sendlog``).

The connection cannot be opened at all (wrong password, untrusted certificate…):
every job still to send fails with that failure and its hints; a temporary
failure to connect is retried with the same back-off first.

Cancelling: set the ``cancel`` event and the batch stops after the current
message (jobs not yet sent stay ``queued``, for ``resume_batch``). Cancelling
the task itself (``CancelledError``) aborts the socket at once; the message in
flight becomes ``unknown``.

``resume_batch`` finishes a batch after a crash, a kill or a cancel: never
what was sent, every queued job, and the ambiguous ones only when they can be
settled (``check_delivered``) or when a resend is explicitly asked for.

The engine knows nothing of documents or PDFs: a ``BatchJob`` gives a ready
``Outgoing`` or a function that builds one for a given Message-ID (called when
the job's turn comes, so a batch of PDFs starts sending at once).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import heapq
import inspect
import itertools
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from transports.base import SendResult, TokenSource, Transport
from transports.errors import FailureClass, SendFailure
from transports.events import EventSink, Step, discard
from transports.hints import with_hints
from transports.message import Outgoing, new_message_id
from transports.settings import Settings
from transports.testsend import open_transport
from tui.sendlog import EntryState, LogEntry, QueueItem, SendLog, SendLogError

MessageBuilder = Callable[[str], Outgoing | Awaitable[Outgoing]]
"""Builds a job's message for the Message-ID the log gave it."""

TransportFactory = Callable[[Settings, str | None, EventSink], Transport]
"""Makes an unopened transport (``transports.testsend.open_transport`` by default)."""

DeliveryCheck = Callable[[str], bool | None | Awaitable[bool | None]]
"""Given a Message-ID: True if delivered, False if not, None if it cannot tell."""

LOOKAHEAD = 1
"""Messages built ahead of the one being sent (its PDF rendered in a thread during
the send): rendering overlaps sending, and memory stays flat whatever the size."""

_AMBIGUOUS_CLASSES = {FailureClass.DISCONNECTED, FailureClass.TIMEOUT, FailureClass.CANCELLED}
_AMBIGUOUS_STEPS = {Step.DATA, Step.RESPONSE, Step.DONE}
_CONNECTION_LOST = {
    FailureClass.DISCONNECTED,
    FailureClass.TIMEOUT,
    FailureClass.PROTOCOL,
    FailureClass.UNEXPECTED,
    FailureClass.CANCELLED,
}


@dataclass(frozen=True)
class BatchJob:
    """One message of a batch."""

    job_id: str
    """Unique in the batch; the document id is a good choice."""
    message: Outgoing | MessageBuilder
    """A built message, or a function building it for a Message-ID."""
    document_id: str | None = None
    recipients: Sequence[str] = ()
    """Shown in the log until the message is built (a builder's job only)."""
    subject: str = ""
    """Shown in the log until the message is built (a builder's job only)."""


@dataclass(frozen=True)
class JobResult:
    """How one job of the batch ended (so far)."""

    job_id: str
    document_id: str | None
    entry_id: int
    state: EntryState
    message_id: str
    attempts: int
    """Attempts recorded in the log, over every run of the batch."""
    result: SendResult | None = None
    """The acceptance, when it happened in this run."""
    failure: SendFailure | None = None
    """The last failure in this run, with its hints."""
    note: str = ""
    """The log's words for an entry settled without a result here."""


@dataclass(frozen=True)
class BatchProgress:
    """Counts for a progress bar: sent + failed + unknown + retrying + remaining = total."""

    total: int
    sent: int
    failed: int
    unknown: int
    retrying: int
    """Waiting for a retry after a temporary failure."""
    remaining: int
    """Not tried yet, or being sent now."""
    current: str | None = None
    """The job being sent now."""
    last: JobResult | None = None
    """The job whose state just changed."""


@dataclass(frozen=True)
class BatchReport:
    """The outcome of ``send_batch`` or ``resume_batch``: one result per job, in order."""

    batch_id: str
    results: tuple[JobResult, ...]
    cancelled: bool = False
    connections: int = 0
    """Connections made or tried in this run (1 unless one was lost or refused)."""

    def _with(self, state: EntryState) -> list[JobResult]:
        return [r for r in self.results if r.state is state]

    @property
    def sent(self) -> list[JobResult]:
        return self._with(EntryState.SENT)

    @property
    def failed(self) -> list[JobResult]:
        return self._with(EntryState.FAILED)

    @property
    def unknown(self) -> list[JobResult]:
        """Maybe delivered: check the mailbox, then ``SendLog.resolve``."""
        return self._with(EntryState.UNKNOWN)

    @property
    def not_sent(self) -> list[JobResult]:
        """Still queued (cancelled, or no message to rebuild them): resume later."""
        return [r for r in self.results if r.state in (EntryState.QUEUED, EntryState.SENDING)]

    @property
    def ok(self) -> bool:
        """True when every job was sent."""
        return len(self.sent) == len(self.results)


def new_batch_id(now: datetime | None = None) -> str:
    """A sortable, readable batch id: ``20261127T101500Z-1a2b3c``."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def allocate_message_id(settings: Settings) -> str:
    """A fresh Message-ID on the sender's domain (as ``build_message`` makes them)."""
    return new_message_id(settings.sender)


def is_ambiguous(failure: SendFailure) -> bool:
    """True when the server may have accepted the message despite the failure."""
    return failure.failure_class in _AMBIGUOUS_CLASSES and failure.step in _AMBIGUOUS_STEPS


def _stored_outgoing(entry: LogEntry, data: bytes) -> Outgoing:
    """The stored message as an ``Outgoing`` that sends exactly these bytes again."""
    parsed = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return Outgoing(
        message=parsed,
        sender=entry.sender,
        recipients=entry.recipients,
        message_id=entry.message_id,
        # As build_message decided it: raw UTF-8 headers (a non-ASCII Reply-To
        # too, not only the envelope) are only written for SMTPUTF8 messages.
        smtputf8=not all(a.isascii() for a in [entry.sender, *entry.recipients])
        or not data.partition(b"\r\n\r\n")[0].isascii(),
        _bytes=[data],
    )


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    entry_id: int = field(compare=False)


class _Run:
    """One run of the engine over the queued entries of a batch."""

    def __init__(
        self,
        batch_id: str,
        settings: Settings,
        secret: str | None,
        *,
        log: SendLog,
        jobs: dict[str, BatchJob],
        on_event: EventSink,
        on_progress: Callable[[BatchProgress], None] | None,
        max_attempts: int,
        backoff: Sequence[float],
        sleep: Callable[[float], Awaitable[None]],
        cancel: asyncio.Event | None,
        transport_factory: TransportFactory,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.batch_id = batch_id
        self.settings = settings
        self.secret = secret
        self.log = log
        self.jobs = jobs
        self.on_event = on_event
        self.on_progress = on_progress
        self.max_attempts = max_attempts
        self.backoff = tuple(backoff) or (0.0,)
        self.sleep = sleep
        self.cancel = cancel
        self.factory = transport_factory
        self.transport: Transport | None = None
        self.connections = 0
        self.results: dict[int, SendResult] = {}
        self.failures: dict[int, SendFailure] = {}
        self.tries: dict[int, int] = {}
        self.ready: deque[int] = deque()
        self.waiting: list[_Retry] = []
        self.seq = itertools.count()
        self.cancelled = False
        self.current: str | None = None
        self.prefetched: dict[int, asyncio.Future[Outgoing]] = {}

    # -- reporting --------------------------------------------------------------

    def job_result(self, entry: LogEntry) -> JobResult:
        return JobResult(
            job_id=entry.job_id,
            document_id=entry.document_id,
            entry_id=entry.id,
            state=entry.state,
            message_id=entry.message_id,
            attempts=entry.attempts,
            result=self.results.get(entry.id),
            failure=self.failures.get(entry.id),
            note=entry.failure if entry.state is EntryState.UNKNOWN else entry.reply,
        )

    def progress(self, last: LogEntry | None = None) -> None:
        if self.on_progress is None:
            return
        # Counted by SQLite: reading every entry of the batch after each message cost
        # ~6.6 ms a message in a batch of 500 (and grew with the batch).
        count = self.log.state_counts(self.batch_id)
        total = sum(count.values())
        retrying = len(self.waiting)
        done = count[EntryState.SENT] + count[EntryState.FAILED] + count[EntryState.UNKNOWN]
        self.on_progress(
            BatchProgress(
                total=total,
                sent=count[EntryState.SENT],
                failed=count[EntryState.FAILED],
                unknown=count[EntryState.UNKNOWN],
                retrying=retrying,
                remaining=total - done - retrying,
                current=self.current,
                last=self.job_result(last) if last else None,
            )
        )

    def report(self) -> BatchReport:
        return BatchReport(
            batch_id=self.batch_id,
            results=tuple(self.job_result(e) for e in self.log.entries(batch_id=self.batch_id)),
            cancelled=self.cancelled,
            connections=self.connections,
        )

    # -- the loop ---------------------------------------------------------------

    async def run(self, entry_ids: Sequence[int]) -> BatchReport:
        self.ready.extend(entry_ids)
        self.progress()
        try:
            while self.ready or self.waiting:
                if self.cancel is not None and self.cancel.is_set():
                    self.cancelled = True
                    break
                if not self.ready:
                    await self._wait_for_retry()
                    continue
                await self._attempt(self.ready.popleft())
        except BaseException:
            self._drop_transport()
            raise
        finally:
            await self._drop_prefetched()
        if self.transport is not None:
            await self.transport.close()
            self.transport = None
        self.current = None
        self.progress()
        return self.report()

    async def _wait_for_retry(self) -> None:
        """Sleep until the next retry is due (or the batch is cancelled)."""
        retry = heapq.heappop(self.waiting)
        delay = retry.due - asyncio.get_running_loop().time()
        if delay > 0:
            # A connection idle through a long back-off may be dropped by the
            # server; the next send then fails before MAIL (retryable, not
            # ambiguous) and the retry reconnects.
            await self._sleep(delay)
        self.ready.append(retry.entry_id)

    async def _sleep(self, delay: float) -> None:
        if self.cancel is None:
            await self.sleep(delay)
            return
        sleeper = asyncio.ensure_future(self.sleep(delay))
        stopper = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    def _schedule_retry(self, entry_id: int, failed_attempts: int) -> None:
        delay = self.backoff[min(failed_attempts, len(self.backoff)) - 1]
        due = asyncio.get_running_loop().time() + delay
        heapq.heappush(self.waiting, _Retry(due, next(self.seq), entry_id))

    def _drop_transport(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _prefetch(self) -> None:
        """Start building the next ``LOOKAHEAD`` queued messages (a PDF rendered in a
        thread) while the current one is sent: rendering and sending overlap, and
        at most ``LOOKAHEAD`` built messages wait in memory."""
        for entry_id in itertools.islice(self.ready, LOOKAHEAD):
            if entry_id in self.prefetched or self.log.message(entry_id) is not None:
                continue
            entry = self.log.entry(entry_id)
            job = self.jobs.get(entry.job_id)
            if job is None or isinstance(job.message, Outgoing):
                continue  # nothing to build ahead (or the error is reported in turn)
            self.prefetched[entry_id] = asyncio.ensure_future(self._build(entry))

    async def _drop_prefetched(self) -> None:
        """Cancel look-ahead builds the run will not use (cancelled or failed batch)."""
        tasks = list(self.prefetched.values())
        self.prefetched.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _outgoing(self, entry: LogEntry) -> Outgoing:
        """The entry's message: the stored bytes, or built by its job (ahead of time
        when ``_prefetch`` started it)."""
        ahead = self.prefetched.pop(entry.id, None)
        if ahead is not None:
            return await ahead
        data = self.log.message(entry.id)
        if data is not None:
            job = self.jobs.get(entry.job_id)
            given = job.message if job is not None else None
            if (
                isinstance(given, Outgoing)
                and given.message_id == entry.message_id
                and given.as_bytes() == data
            ):
                # The very message whose bytes were stored (a built job queued in this
                # run): sent as it is, not parsed back from the log (~2 ms a message).
                return given
            return _stored_outgoing(entry, data)
        return await self._build(entry)

    async def _build(self, entry: LogEntry) -> Outgoing:
        """The entry's message, built by its job."""
        job = self.jobs.get(entry.job_id)
        if job is None:
            raise LookupError("the message was never stored and no job was given to build it")
        if isinstance(job.message, Outgoing):
            outgoing = job.message
        else:
            built = job.message(entry.message_id)
            outgoing = await built if inspect.isawaitable(built) else built
        if outgoing.message_id != entry.message_id:
            raise ValueError(
                f"the job built a message with Message-ID {outgoing.message_id}, "
                f"not the {entry.message_id} it was given"
            )
        return outgoing

    async def _open(self) -> Transport | None:
        """The open transport, connecting (with retries for temporary failures) if needed.

        None when the batch was cancelled while waiting to reconnect.
        """
        failures = 0
        while self.transport is None:
            transport = self.factory(self.settings, self.secret, self.on_event)
            self.connections += 1
            try:
                await transport.open()
            except SendFailure as failure:
                transport.abort()
                failures += 1
                if not failure.retryable or failures >= self.max_attempts:
                    raise
                await self._sleep(self.backoff[min(failures, len(self.backoff)) - 1])
                if self.cancel is not None and self.cancel.is_set():
                    return None
            except BaseException:
                transport.abort()
                raise
            else:
                self.transport = transport
        return self.transport

    def _fail_everything_left(self, entry_id: int, failure: SendFailure) -> None:
        """The connection cannot be opened: every job still to send fails with it."""
        left = [entry_id, *self.ready, *(r.entry_id for r in self.waiting)]
        self.ready.clear()
        self.waiting.clear()
        for left_id in left:
            self.failures[left_id] = failure
            self.progress(self.log.mark_failed(left_id, failure, final=True))

    async def _attempt(self, entry_id: int) -> None:
        entry = self.log.entry(entry_id)
        self.current = entry.job_id
        try:
            outgoing = await self._outgoing(entry)
        except Exception as exc:  # the caller's builder: any error fails this job only
            failure = SendFailure(
                FailureClass.UNEXPECTED,
                Step.DONE,
                "The message could not be built",
                detail=f"{type(exc).__name__}: {exc}",
            )
            self.failures[entry_id] = failure
            self.progress(self.log.mark_failed(entry_id, failure, final=True))
            return
        try:
            transport = await self._open()
        except SendFailure as failure:
            self._fail_everything_left(entry_id, with_hints(failure, self.settings))
            return
        if transport is None or (self.cancel is not None and self.cancel.is_set()):
            # Cancelled while (re)connecting: the job was never started.
            self.ready.appendleft(entry_id)
            return
        entry = self.log.mark_sending(entry_id, outgoing)
        self.tries[entry_id] = self.tries.get(entry_id, 0) + 1
        self._prefetch()
        try:
            result = await transport.send(outgoing)
        except SendFailure as failure:
            self._failed(entry, with_hints(failure, self.settings))
        except asyncio.CancelledError:
            self._drop_transport()
            self.log.mark_unknown(
                entry_id,
                "cancelled while sending: the server may have accepted it; "
                "check the mailbox (or the archive copy) before resending",
            )
            raise
        else:
            self.results[entry_id] = result
            self.failures.pop(entry_id, None)
            self.progress(self.log.mark_sent(entry_id, result))

    def _failed(self, entry: LogEntry, failure: SendFailure) -> None:
        self.failures[entry.id] = failure
        if failure.failure_class in _CONNECTION_LOST or failure.reply_code == 421:
            self._drop_transport()
        if is_ambiguous(failure):
            changed = self.log.mark_unknown(
                entry.id,
                f"{failure}: the connection ended after the message was handed over, so the "
                "server may have accepted it; check the mailbox before resending",
            )
        elif failure.retryable and self.tries[entry.id] < self.max_attempts:
            changed = self.log.mark_failed(entry.id, failure, final=False)
            self._schedule_retry(entry.id, self.tries[entry.id])
        else:
            changed = self.log.mark_failed(entry.id, failure, final=True)
        self.progress(changed)


def _factory(factory: TransportFactory, token_source: TokenSource | None) -> TransportFactory:
    """The default factory with the OAuth2 token source bound in."""
    if token_source is None:
        return factory
    if factory is not open_transport:
        raise ValueError("token_source only works with the default transport factory")

    def with_tokens(settings: Settings, secret: str | None, on_event: EventSink) -> Transport:
        return open_transport(settings, secret, on_event, token_source=token_source)

    return with_tokens


def _check_unique(jobs: Sequence[BatchJob]) -> dict[str, BatchJob]:
    by_id: dict[str, BatchJob] = {}
    for job in jobs:
        if job.job_id in by_id:
            raise ValueError(f"job id {job.job_id!r} appears twice in the batch")
        by_id[job.job_id] = job
    return by_id


async def send_batch(
    settings: Settings,
    secret: str | None,
    jobs: Sequence[BatchJob],
    *,
    log: SendLog,
    on_event: EventSink = discard,
    on_progress: Callable[[BatchProgress], None] | None = None,
    batch_id: str | None = None,
    max_attempts: int = 3,
    backoff: Sequence[float] = (1, 4, 10),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    cancel: asyncio.Event | None = None,
    transport_factory: TransportFactory = open_transport,
    token_source: TokenSource | None = None,
) -> BatchReport:
    """Send the jobs over one connection, recording each in the log.

    Args:
        settings: where and how to send.
        secret: the password or relay key (never logged).
        jobs: the messages, in order; job ids unique.
        log: the send log.
        on_event: receives every transcript event (all connections).
        on_progress: receives counts after every change of a job's state.
        batch_id: the id to record; a new one when omitted.
        max_attempts: attempts per job in this run, for temporary failures.
        backoff: seconds to wait before the n-th retry (the last value repeats).
        sleep: the sleep function (tests pass one that does not wait).
        cancel: set it to stop after the current message.
        transport_factory: makes the transport (tests may pass their own).
        token_source: the OAuth2 access tokens when ``smtp.auth`` is ``oauth2``
            (``tui.oauth_smtp.token_source``); only with the default factory.

    Returns:
        One result per job, in order. Never raises for a failed send; raises
        ``SendLogBusy`` when another batch is sending with the same log.
    """
    by_id = _check_unique(jobs)
    batch_id = batch_id or new_batch_id()
    items = []
    for job in jobs:
        if isinstance(job.message, Outgoing):
            out = job.message
            items.append(
                QueueItem(
                    job_id=job.job_id,
                    message_id=out.message_id,
                    document_id=job.document_id,
                    recipients=out.recipients,
                    subject=str(out.message.get("Subject", "")),
                    sender=out.sender,
                    message=out.as_bytes(),
                )
            )
        else:
            items.append(
                QueueItem(
                    job_id=job.job_id,
                    message_id=allocate_message_id(settings),
                    document_id=job.document_id,
                    recipients=tuple(job.recipients),
                    subject=job.subject,
                    sender=settings.sender,
                )
            )
    with log.sending_lock():
        entry_ids = log.queue(batch_id, items)
        queued = {e.id for e in log.entries(batch_id=batch_id, state=EntryState.QUEUED)}
        run = _Run(
            batch_id,
            settings,
            secret,
            log=log,
            jobs=by_id,
            on_event=on_event,
            on_progress=on_progress,
            max_attempts=max_attempts,
            backoff=backoff,
            sleep=sleep,
            cancel=cancel,
            transport_factory=_factory(transport_factory, token_source),
        )
        return await run.run([i for i in entry_ids if i in queued])


async def resume_batch(
    batch_id: str,
    settings: Settings,
    secret: str | None,
    *,
    log: SendLog,
    jobs: Sequence[BatchJob] = (),
    check_delivered: DeliveryCheck | None = None,
    resend_unknown: bool = False,
    on_event: EventSink = discard,
    on_progress: Callable[[BatchProgress], None] | None = None,
    max_attempts: int = 3,
    backoff: Sequence[float] = (1, 4, 10),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    cancel: asyncio.Event | None = None,
    transport_factory: TransportFactory = open_transport,
    token_source: TokenSource | None = None,
) -> BatchReport:
    """Finish an interrupted batch: send what was not sent, never what was.

    Entries left ``sending`` (their sender died) become ``unknown``. Each
    ``unknown`` entry is settled by ``check_delivered(message_id)`` when given
    (True → sent, False → resent with the same Message-ID, None → stays
    unknown and is reported), or resent when ``resend_unknown`` is True, or
    else left ``unknown`` and reported. Then every ``queued`` entry is sent:
    its stored message when it was built before, else the job with its job id
    from ``jobs`` builds it (for the Message-ID recorded at queue time); a
    queued entry with neither stays queued and is reported as not sent.

    Other arguments as for ``send_batch``. Raises ``SendLogError`` for a batch
    the log does not know and ``SendLogBusy`` when a batch is sending.
    """
    by_id = _check_unique(jobs)
    with log.sending_lock():
        if not log.entries(batch_id=batch_id, limit=1):
            raise SendLogError(f"the send log has no batch {batch_id!r}")
        log.recover(batch_id)
        for entry in log.entries(batch_id=batch_id, state=EntryState.UNKNOWN):
            if check_delivered is not None:
                verdict = check_delivered(entry.message_id)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
                if verdict is True:
                    log.resolve(entry.id, delivered=True, note="found by the delivery check")
                elif verdict is False:
                    log.resolve(
                        entry.id, delivered=False, note="not found by the delivery check: resent"
                    )
            elif resend_unknown:
                log.resolve(entry.id, delivered=False, note="resent on request, same Message-ID")
        run = _Run(
            batch_id,
            settings,
            secret,
            log=log,
            jobs=by_id,
            on_event=on_event,
            on_progress=on_progress,
            max_attempts=max_attempts,
            backoff=backoff,
            sleep=sleep,
            cancel=cancel,
            transport_factory=_factory(transport_factory, token_source),
        )
        queued = log.entries(batch_id=batch_id, state=EntryState.QUEUED)
        sendable = [e.id for e in queued if e.job_id in by_id or log.message(e.id) is not None]
        return await run.run(sendable)


__all__ = [
    "BatchJob",
    "BatchProgress",
    "BatchReport",
    "DeliveryCheck",
    "JobResult",
    "MessageBuilder",
    "allocate_message_id",
    "is_ambiguous",
    "new_batch_id",
    "resume_batch",
    "send_batch",
]
