"""Shared helpers for the hostile tests: settings for a loopback port, outcome checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transports.errors import FailureClass, SendFailure
from transports.events import Step, TranscriptEvent
from transports.settings import Settings
from transports.testsend import TestOutcome, run_test

SECRET = "Hostile-Secret-9!"
USER = "me@example.test"


def smtp_settings(
    port: int,
    *,
    security: str = "none",
    username: str = USER,
    timeout: float = 1.0,
    ca_file: Path | str = "",
    **top: Any,
) -> Settings:
    """Settings for a server on 127.0.0.1:``port``."""
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "username": username,
        "from_address": "" if "@" in username else USER,
        "ca_file": str(ca_file),
    }
    return Settings.model_validate({"timeout": timeout, "smtp": smtp, **top})


@dataclass
class Ran:
    """A finished test send: outcome, events, wall time."""

    outcome: TestOutcome
    events: list[TranscriptEvent] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failure(self) -> SendFailure:
        assert self.outcome.failure is not None, f"expected a failure, got {self.outcome}"
        return self.outcome.failure

    def texts(self) -> list[str]:
        return [event.text for event in self.events]


async def run(settings: Settings, secret: str | None = SECRET, *, probe: bool = False) -> Ran:
    """``run_test`` with every event kept and the wall time measured."""
    events: list[TranscriptEvent] = []
    start = time.monotonic()
    outcome = await run_test(settings, secret, on_event=events.append, probe=probe)
    return Ran(outcome, events, time.monotonic() - start)


def assert_classified(
    ran: Ran,
    failure_class: FailureClass | set[FailureClass],
    step: Step | None = None,
    *,
    within: float,
) -> SendFailure:
    """A classified failure with hints, in time, nothing secret or undecodable in it."""
    failure = ran.failure
    expected = failure_class if isinstance(failure_class, set) else {failure_class}
    assert failure.failure_class in expected, failure
    if step is not None:
        assert failure.step is step, failure
    assert failure.hints, failure
    assert ran.seconds < within, f"took {ran.seconds:.2f} s (limit {within} s)"
    assert_clean(ran)
    return failure


def assert_clean(ran: Ran) -> None:
    """No secret in any event or failure text; every text encodes as UTF-8."""
    texts = ran.texts()
    if ran.outcome.failure is not None:
        failure = ran.outcome.failure
        texts += [failure.title, failure.detail, failure.reply_text, *failure.hints]
    for text in texts:
        assert SECRET not in text
        text.encode("utf-8")  # no lone surrogate: a log file or a terminal can take it
