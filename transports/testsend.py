"""The test send: one call shared by the CLI, the TUI and the demo.

``run_test`` opens a transport, sends a short message whose body summarises
the settings (never the password) and closes, streaming every step to
``on_event``. It never raises for a failed exchange: the outcome says what
happened, with the classified failure and its hints.
"""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass
from typing import Any

from transports.base import SendResult, TokenSource, Transport
from transports.errors import FailureClass, SendFailure
from transports.events import Clock, Direction, EventSink, Step, TranscriptEvent
from transports.hints import with_hints
from transports.message import Outgoing, build_message
from transports.settings import Protocol, Security, Settings


def open_transport(
    settings: Settings,
    secret: str | None,
    on_event: EventSink,
    *,
    clock: Clock | None = None,
    token_source: TokenSource | None = None,
) -> Transport:
    """The transport for the settings' protocol (imported lazily: fast CLI start).

    ``token_source`` gives the OAuth2 access tokens when ``smtp.auth`` is
    ``oauth2`` (SMTP only).
    """
    if settings.protocol is Protocol.HTTP:
        from transports.http_relay import HttpTransport

        return HttpTransport(settings, secret, on_event, clock=clock)
    from transports.smtp import SmtpTransport

    return SmtpTransport(settings, secret, on_event, clock=clock, token_source=token_source)


@dataclass(frozen=True)
class TestOutcome:
    """How a test send ended."""

    __test__ = False  # not a pytest test class

    ok: bool
    elapsed_ms: float
    result: SendResult | None = None
    failure: SendFailure | None = None
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "result",
            "ok": self.ok,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "result": self.result.to_dict() if self.result else None,
            "failure": self.failure.to_dict() if self.failure else None,
        }


def settings_summary(settings: Settings) -> str:
    """The settings in plain words, for the test message body (no password)."""
    lines = [f"Protocol: {settings.protocol.value}", f"Preset: {settings.preset}"]
    if settings.protocol is Protocol.SMTP:
        smtp = settings.smtp
        lines += [
            f"Server: {smtp.host} port {smtp.port}, security {smtp.security.value}",
            "Encryption: NONE (security none: no TLS, no certificate)"
            if smtp.security is Security.NONE
            else f"Certificate verification: {'on' if smtp.verify_tls else 'OFF'}"
            + (f" (trusting {smtp.ca_file})" if smtp.ca_file else ""),
            f"Username: {smtp.username or '(none: no AUTH)'}",
        ]
        if smtp.auth.value == "oauth2":
            lines.append("Authentication: OAuth2 (XOAUTH2 access token)")
    else:
        lines.append(f"Relay URL: {settings.http.url}")
    lines += [
        f"From: {settings.from_name + ' ' if settings.from_name else ''}<{settings.sender}>",
        f"Reply-To: {settings.reply_to or '(not set)'}",
        f"Blind copy to: {settings.copy_to or '(not set)'}",
        f"Timeout per step: {settings.timeout:g} s",
    ]
    return "\n".join(lines)


def build_test_message(settings: Settings, to: str | None = None) -> Outgoing:
    """The test message: to the sender unless another recipient is given."""
    body = (
        "This is a test message from smtpdesk.\n"
        f"Sent from {platform.node() or 'this machine'} with these settings:\n\n"
        f"{settings_summary(settings)}\n\n"
        "If you can read this, outgoing email works.\n"
    )
    return build_message(
        settings,
        to=[to or settings.sender],
        subject="smtpdesk test message",
        body=body,
    )


def _probe_summary(settings: Settings) -> str:
    """What an SMTP probe established, in words: never "secured" for security none."""
    smtp = settings.smtp
    login = smtp.username != ""
    if smtp.security is Security.NONE:
        return "connected (NOT encrypted: security none" + (
            ") and authenticated" if login else "; no login)"
        )
    return "connected, secured" + (" and authenticated" if login else " (no login)")


async def run_test(
    settings: Settings,
    secret: str | None,
    *,
    on_event: EventSink,
    to: str | None = None,
    probe: bool = False,
    clock: Clock | None = None,
    token_source: TokenSource | None = None,
) -> TestOutcome:
    """Run the test send (or, with ``probe``, connect + TLS + AUTH only).

    ``token_source``: the OAuth2 access tokens when ``smtp.auth`` is ``oauth2``.
    """
    clock = clock or Clock()
    outgoing = None if probe else build_test_message(settings, to)
    transport = open_transport(settings, secret, on_event, clock=clock, token_source=token_source)
    try:
        async with transport:
            result = await transport.send(outgoing) if outgoing else None
    except SendFailure as failure:
        failure = with_hints(failure, settings)
        on_event(TranscriptEvent(failure.step, Direction.ERROR, str(failure), clock.elapsed_ms()))
        return TestOutcome(ok=False, elapsed_ms=clock.elapsed_ms(), failure=failure)
    except asyncio.CancelledError:
        on_event(TranscriptEvent(Step.DONE, Direction.INFO, "cancelled", clock.elapsed_ms()))
        raise
    elapsed = clock.elapsed_ms()
    if not probe:
        text = "test message sent"
    elif settings.protocol is Protocol.HTTP:
        # HTTP has no session: the key is only checked when a message is posted.
        secured = "TLS verified" if settings.http.url.startswith("https://") else "plain http"
        text = f"probe passed: relay reachable ({secured}); the key is checked on a real send"
    else:
        text = f"probe passed: {_probe_summary(settings)}"
    if result and result.queue_id:
        text += f" (queue id {result.queue_id})"
    on_event(TranscriptEvent(Step.DONE, Direction.INFO, f"{text} in {elapsed:.0f} ms", elapsed))
    return TestOutcome(ok=True, elapsed_ms=elapsed, result=result)


__all__ = [
    "FailureClass",
    "TestOutcome",
    "build_test_message",
    "open_transport",
    "run_test",
    "settings_summary",
]
