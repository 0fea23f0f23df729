"""The test send shared by the CLI and the TUI: success, failure with hints, probe mode."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from email.policy import default

import pytest

from tests.smtpservers import Certs, SmtpServerFactory, Tarpit
from tests.transports.helpers import PASSWORD, USER
from transports.errors import FailureClass
from transports.events import Direction, Step, TranscriptEvent
from transports.settings import Settings
from transports.testsend import build_test_message, run_test


async def test_success_sends_the_summary_to_the_sender(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    events: list[TranscriptEvent] = []
    outcome = await run_test(settings, PASSWORD, on_event=events.append)
    assert outcome.ok and outcome.failure is None
    assert outcome.result is not None and outcome.result.queue_id == "Q0001"
    last = events[-1]
    assert last.step is Step.DONE and last.direction is Direction.INFO
    assert "test message sent (queue id Q0001)" in last.text
    received = server.handler.messages[0]
    assert received.rcpt_tos == [USER]
    body = message_from_bytes(received.content, policy=default).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"port {server.port}, security starttls" in text
    assert PASSWORD not in text
    assert outcome.to_dict()["ok"] is True


async def test_another_recipient(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    outcome = await run_test(settings, PASSWORD, on_event=lambda e: None, to="ops@example.test")
    assert outcome.ok
    assert server.handler.messages[0].rcpt_tos == ["ops@example.test"]


async def test_failure_has_hints_and_an_error_event(
    smtp_server: SmtpServerFactory, certs: Certs
) -> None:
    server = await smtp_server("starttls", accounts={USER: "other"})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    events: list[TranscriptEvent] = []
    outcome = await run_test(settings, PASSWORD, on_event=events.append)
    assert not outcome.ok and outcome.failure is not None
    assert outcome.failure.failure_class is FailureClass.AUTH_FAILED
    assert outcome.failure.hints and "Thunderbird" in outcome.failure.hints[-1]
    assert events[-1].direction is Direction.ERROR and events[-1].step is Step.AUTH
    data = outcome.to_dict()
    assert data["ok"] is False and data["failure"]["class"] == "auth_failed"
    assert server.handler.messages == []


async def test_probe_sends_no_mail(smtp_server: SmtpServerFactory, certs: Certs) -> None:
    server = await smtp_server("starttls", accounts={USER: PASSWORD})
    settings = server.settings(username=USER, ca_file=certs.ca_pem)
    events: list[TranscriptEvent] = []
    outcome = await run_test(settings, PASSWORD, on_event=events.append, probe=True)
    assert outcome.ok and outcome.result is None
    assert server.handler.attempted_auth == [f"AUTH PLAIN {USER}"]
    assert not any(c.startswith(("MAIL", "RCPT", "DATA")) for c in server.handler.commands)
    assert "probe passed" in events[-1].text
    assert any(e.step is Step.QUIT for e in events)


async def test_cancelled_test_reraises_after_a_done_event(tarpit: Tarpit) -> None:
    settings = Settings.model_validate(
        {"timeout": 30, "smtp": {"host": "127.0.0.1", "port": tarpit.port, "username": USER}}
    )
    events: list[TranscriptEvent] = []
    task = asyncio.create_task(run_test(settings, PASSWORD, on_event=events.append))
    await asyncio.wait_for(tarpit.accepted.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events[-1].step is Step.DONE and events[-1].text == "cancelled"
    await asyncio.wait_for(tarpit.closed_by_client.wait(), 1)


def test_test_message_never_carries_the_password() -> None:
    settings = Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": USER, "password_command": ["pass"]}}
    )
    outgoing = build_test_message(settings)
    assert outgoing.recipients == (USER,)
    assert b"smtp.example.com port 587" in outgoing.as_bytes()
