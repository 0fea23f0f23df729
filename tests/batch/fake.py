"""A scripted in-memory transport for the batch engine's unit tests.

``FakeServer`` plays the far end: it counts connections, keeps every accepted
message by Message-ID, and asks a ``script`` what to do with each attempt
(accept, fail with a ``SendFailure``, or accept and *then* fail, the ambiguous
case where the server has the message but the client never hears so).
The end-to-end tests use the real sandbox and SMTP transport instead.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from transports.base import SendResult, Transport
from transports.errors import FailureClass, SendFailure
from transports.events import Clock, Direction, EventSink, Step, TranscriptEvent
from transports.message import Outgoing
from transports.settings import Settings

Script = Callable[[str, int], "SendFailure | tuple[str, SendFailure] | None"]
"""``(subject, attempt) -> None`` (accept), a failure, or ``("after", failure)``
(accept, then fail: the client does not learn it was accepted)."""


def temporary(step: Step = Step.RCPT, code: int = 451) -> SendFailure:
    """A 4xx refusal, as the SMTP transport classifies it."""
    return SendFailure(
        FailureClass.TEMPORARY,
        step,
        "Temporary failure",
        reply_code=code,
        reply_text="4.3.0 try later",
        retryable=True,
    )


def permanent() -> SendFailure:
    """A 550 recipient refusal."""
    return SendFailure(
        FailureClass.RECIPIENT_REJECTED,
        Step.RCPT,
        "Recipient refused",
        reply_code=550,
        reply_text="5.1.1 no such user",
    )


def disconnected(step: Step) -> SendFailure:
    """The server dropped the connection at ``step``."""
    return SendFailure(
        FailureClass.DISCONNECTED, step, "Connection lost", detail="EOF", retryable=True
    )


@dataclass
class FakeServer:
    """The far end of every ``FakeTransport`` made by ``factory``."""

    script: Script = lambda subject, attempt: None
    open_failures: list[SendFailure] = field(default_factory=list)
    """Failures for the next ``open()`` calls, in order."""
    delay: float = 0.0
    """Seconds each send takes (so a test can cancel mid-send)."""
    connections: int = 0
    aborted: int = 0
    closed: int = 0
    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(Message-ID, subject, bytes) of each accepted message, in order."""
    attempts: Counter[str] = field(default_factory=Counter)
    """Attempts per subject."""
    order: list[str] = field(default_factory=list)
    """Subjects in the order the attempts came."""

    def factory(self, settings: Settings, secret: str | None, on_event: EventSink) -> Transport:
        return FakeTransport(self, settings, secret, on_event)

    def count(self, message_id: str) -> int:
        return sum(1 for mid, _, _ in self.received if mid == message_id)


class FakeTransport(Transport):
    """A transport whose server is a ``FakeServer``."""

    def __init__(
        self, server: FakeServer, settings: Settings, secret: str | None, on_event: EventSink
    ) -> None:
        super().__init__(settings, secret, on_event, clock=Clock())
        self.server = server
        self.is_open = False

    def _event(self, step: Step, direction: Direction, text: str) -> None:
        self.on_event(TranscriptEvent(step, direction, text, self.clock.elapsed_ms()))

    async def open(self) -> None:
        self.server.connections += 1
        self._event(Step.CONNECT, Direction.INFO, "connected")
        if self.server.open_failures:
            raise self.server.open_failures.pop(0)
        self.is_open = True

    async def send(self, outgoing: Outgoing) -> SendResult:
        assert self.is_open, "send on a transport that is not open"
        subject = str(outgoing.message["Subject"])
        self.server.attempts[subject] += 1
        self.server.order.append(subject)
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        outcome = self.server.script(subject, self.server.attempts[subject])
        if isinstance(outcome, SendFailure):
            if outcome.failure_class is FailureClass.DISCONNECTED:
                self.is_open = False
            raise outcome
        data = outgoing.as_bytes()
        self.server.received.append((outgoing.message_id, subject, data))
        if outcome is not None:
            self.is_open = False
            raise outcome[1]
        queue_id = f"Q{len(self.server.received)}"
        self._event(Step.DATA, Direction.IN, f"250 2.0.0 OK: queued as {queue_id}")
        return SendResult(
            message_id=outgoing.message_id,
            queue_id=queue_id,
            reply=f"250 2.0.0 OK: queued as {queue_id}",
            accepted=outgoing.recipients,
        )

    async def close(self) -> None:
        self.server.closed += 1
        self.is_open = False

    def abort(self) -> None:
        self.server.aborted += 1
        self.is_open = False
