"""Shared helpers for the transport tests: run a probe or a send, collect events."""

from __future__ import annotations

from dataclasses import dataclass, field

from transports.base import SendResult
from transports.errors import SendFailure
from transports.events import TranscriptEvent
from transports.message import Attachment, Outgoing, build_message
from transports.settings import Settings
from transports.smtp import SmtpTransport

PASSWORD = "S3cr3t-Pa55-Xyzzy"
USER = "me@example.test"


@dataclass
class Run:
    """The outcome of one exchange and its transcript."""

    events: list[TranscriptEvent] = field(default_factory=list)
    results: list[SendResult] = field(default_factory=list)
    failure: SendFailure | None = None

    def texts(self) -> list[str]:
        return [event.text for event in self.events]

    def transcript(self) -> str:
        return "\n".join(event.format() for event in self.events)


def message(settings: Settings, *, to: str = "you@example.test", **kwargs: object) -> Outgoing:
    """A small message from the settings' sender."""
    attachments = kwargs.pop("attachments", ())
    assert isinstance(attachments, tuple | list)
    return build_message(
        settings,
        to=[to],
        subject=str(kwargs.pop("subject", "Invoice 42")),
        body=str(kwargs.pop("body", "Hello,\nplease find the invoice attached.\n")),
        attachments=[a for a in attachments if isinstance(a, Attachment)],
    )


async def exchange(
    settings: Settings,
    secret: str | None = PASSWORD,
    outgoing: list[Outgoing] | None = None,
) -> Run:
    """Open, send each message, close; a failure is kept, not raised."""
    run = Run()
    transport = SmtpTransport(settings, secret, run.events.append)
    try:
        async with transport:
            for item in outgoing or []:
                run.results.append(await transport.send(item))
    except SendFailure as failure:
        run.failure = failure
    return run
