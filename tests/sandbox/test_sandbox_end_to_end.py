"""The engine's test send against the sandbox in all three modes (what `make demo` does)."""

from __future__ import annotations

import base64
import logging
from email import message_from_bytes
from pathlib import Path
from typing import Literal

import pytest

from transports.events import TranscriptEvent
from transports.testsend import run_test
from tui.sandbox import Sandbox


@pytest.mark.parametrize("mode", ["starttls", "tls", "http"])
async def test_run_test_succeeds_against_the_sandbox(
    sandbox: Sandbox, mode: Literal["starttls", "tls", "http"]
) -> None:
    settings = sandbox.settings(mode, timeout=5)
    secret = sandbox.http_key if mode == "http" else sandbox.password
    events: list[TranscriptEvent] = []
    outcome = await run_test(settings, secret, on_event=events.append)
    assert outcome.failure is None, outcome.failure
    assert outcome.ok
    [captured] = sandbox.messages
    assert outcome.result is not None
    assert outcome.result.queue_id == captured.queue_id
    assert captured.via == mode
    assert captured.recipients == ("demo@smtpdesk.test",)
    assert message_from_bytes(captured.data)["Subject"] == "smtpdesk test message"
    assert captured.path.read_bytes() == captured.data
    assert events[-1].text.startswith(f"test message sent (queue id {captured.queue_id})")


async def test_wrong_sandbox_password_is_an_auth_failure(sandbox: Sandbox) -> None:
    outcome = await run_test(sandbox.settings(timeout=5), "wrong", on_event=lambda e: None)
    assert outcome.failure is not None
    assert outcome.failure.failure_class.value == "auth_failed"
    assert sandbox.messages == []


async def test_sandbox_logs_never_carry_the_password_of_a_real_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With DEBUG logging on, the SMTP transport's AUTH through the sandbox leaks nothing."""
    password = "Sandbox-Recognisable-Secret-93"
    caplog.set_level(logging.DEBUG)
    async with Sandbox(tmp_path, accounts={"ops@server.local": password}) as sandbox:
        outcome = await run_test(sandbox.settings(timeout=5), password, on_event=lambda e: None)
    assert outcome.ok
    plain = base64.b64encode(f"\0ops@server.local\0{password}".encode()).decode()
    assert caplog.records
    for record in caplog.records:
        for form in (password, base64.b64encode(password.encode()).decode(), plain):
            assert form not in record.getMessage()
