"""A fake test-send engine with fixed events, for snapshots and UI-only tests.

It emits the same kind of events as the real engine, with fixed elapsed times
and queue ids, so that a snapshot never holds variable content.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from screens.settings import RunTest
from transports.base import SendResult, TokenSource
from transports.errors import FailureClass, SendFailure
from transports.events import Direction, EventSink, Step, TranscriptEvent
from transports.hints import hints_for
from transports.settings import Settings
from transports.testsend import TestOutcome

SUCCESS_EVENTS = (
    TranscriptEvent(Step.RESOLVE, Direction.INFO, "smtp.example.com → 192.0.2.10", 1.0),
    TranscriptEvent(Step.CONNECT, Direction.INFO, "connected to 192.0.2.10:587", 12.0),
    TranscriptEvent(Step.GREETING, Direction.IN, "220 mx.example.com ESMTP ready", 20.0),
    TranscriptEvent(Step.EHLO, Direction.OUT, "EHLO desk.example", 21.0),
    TranscriptEvent(Step.EHLO, Direction.IN, "250 STARTTLS SIZE 35882577 [8BITMIME]", 25.0),
    TranscriptEvent(Step.STARTTLS, Direction.OUT, "STARTTLS", 26.0),
    TranscriptEvent(Step.TLS, Direction.INFO, "TLSv1.3 TLS_AES_256_GCM_SHA384", 60.0, True),
    TranscriptEvent(Step.AUTH, Direction.OUT, "AUTH PLAIN <redacted>", 70.0, True),
    TranscriptEvent(Step.AUTH, Direction.IN, "235 2.7.0 Authentication successful", 90.0, True),
    TranscriptEvent(Step.DATA, Direction.IN, "250 2.0.0 OK: queued as 4XQZ7", 130.0, True),
    TranscriptEvent(Step.DONE, Direction.INFO, "test message sent (queue id 4XQZ7)", 140.0, True),
)

AUTH_FAILURE_EVENTS = (
    *SUCCESS_EVENTS[:8],
    TranscriptEvent(
        Step.AUTH, Direction.IN, "535 5.7.8 Username and Password not accepted", 95.0, True
    ),
)


def success_outcome() -> TestOutcome:
    """A fixed successful outcome."""
    result = SendResult(
        message_id="<fixed@smtpdesk.test>",
        queue_id="4XQZ7",
        reply="250 2.0.0 OK: queued as 4XQZ7",
        accepted=("me@gmail.com",),
        elapsed_ms=140.0,
    )
    return TestOutcome(ok=True, elapsed_ms=140.0, result=result)


def auth_failure_outcome(preset: str = "gmail") -> TestOutcome:
    """A fixed authentication failure with the preset's hints."""
    failure = SendFailure(
        FailureClass.AUTH_FAILED,
        Step.AUTH,
        "Authentication failed",
        detail="535 5.7.8 Username and Password not accepted",
        reply_code=535,
        hints=hints_for(FailureClass.AUTH_FAILED, preset),
    )
    return TestOutcome(ok=False, elapsed_ms=95.0, failure=failure)


class FakeEngine:
    """Plays fixed events, then returns a fixed outcome; records every call."""

    def __init__(
        self,
        events: Sequence[TranscriptEvent] = SUCCESS_EVENTS,
        outcome: TestOutcome | None = None,
        *,
        hang: bool = False,
    ) -> None:
        self.events = tuple(events)
        self.outcome = outcome or success_outcome()
        self.hang = hang
        """Never finish after the events (to test cancelling)."""
        self.calls: list[tuple[Settings, str | None, str | None]] = []
        self.token_sources: list[TokenSource | None] = []
        """The OAuth2 token source of each call (None: a password login)."""

    async def __call__(
        self,
        settings: Settings,
        secret: str | None,
        *,
        on_event: EventSink,
        to: str | None = None,
        token_source: TokenSource | None = None,
    ) -> TestOutcome:
        self.calls.append((settings, secret, to))
        self.token_sources.append(token_source)
        for event in self.events:
            on_event(event)
            await asyncio.sleep(0)
        if self.hang:
            await asyncio.Event().wait()
        return self.outcome


def as_run_test(engine: FakeEngine) -> RunTest:
    """The fake, typed as the engine's callable."""
    return engine
