"""Transcript events: one line of the live conversation with a mail server.

Transports emit events to a plain callback (``EventSink``) that knows nothing
about the UI; the CLI prints them, the TUI appends them to a log pane. An event
never carries a credential: AUTH payloads are replaced by ``<redacted>`` before
an event is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    """Who said it."""

    OUT = "out"
    """What we sent to the server."""
    IN = "in"
    """What the server said."""
    INFO = "info"
    """Our own notes: resolution, timings, TLS details, decisions."""
    ERROR = "error"
    """The failure that ended the exchange."""

    @property
    def arrow(self) -> str:
        """A swaks-like marker for plain-text transcripts."""
        return {"out": "->", "in": "<-", "info": "==", "error": "!!"}[self.value]


class Step(StrEnum):
    """The step of the exchange an event or a failure belongs to."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS = "tls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    QUIT = "quit"
    REQUEST = "request"
    RESPONSE = "response"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """One line of the transcript."""

    step: Step
    direction: Direction
    text: str
    elapsed_ms: float
    """Milliseconds since the exchange started."""
    encrypted: bool = False
    """True once the line travelled inside TLS."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``--json``."""
        return {
            "type": "event",
            "step": self.step.value,
            "direction": self.direction.value,
            "text": self.text,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "encrypted": self.encrypted,
        }

    def format(self) -> str:
        """A one-line plain-text form: elapsed time, direction, text."""
        lock = "~" if self.encrypted else " "
        return f"{self.elapsed_ms / 1000:7.3f}s {self.direction.arrow}{lock} {self.text}"


EventSink = Callable[[TranscriptEvent], None]
"""Receives each event as it happens. Must not block."""


@dataclass
class Clock:
    """Elapsed time since the exchange started, injectable for tests."""

    now: Callable[[], float] = time.perf_counter
    start: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.start = self.now()

    def elapsed_ms(self) -> float:
        return (self.now() - self.start) * 1000.0


def discard(event: TranscriptEvent) -> None:
    """An event sink that drops everything."""
