"""The password never appears in any event, exception, failure, log record or output.

Every success and failure path runs with a recognisable password; the test
looks for it plain and base64 (alone, and as the AUTH PLAIN blob).
"""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from tests.smtpservers import CLOSE, Certs, Script, ScriptedFactory, SmtpServerFactory, Tarpit
from tests.transports.helpers import PASSWORD, USER, message
from transports.events import TranscriptEvent
from transports.settings import Settings
from transports.smtp import SmtpTransport
from transports.testsend import run_test


def forbidden_forms() -> list[str]:
    forms = [PASSWORD]
    for blob in (PASSWORD.encode(), f"\0{USER}\0{PASSWORD}".encode()):
        encoded = base64.b64encode(blob).decode()
        forms += [encoded, encoded.rstrip("=")]
    return forms


async def test_no_path_leaks_the_password(
    smtp_server: SmtpServerFactory,
    scripted_server: ScriptedFactory,
    tarpit: Tarpit,
    certs: Certs,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    events: list[TranscriptEvent] = []
    plain_blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()

    good = await smtp_server("starttls", accounts={USER: PASSWORD})
    implicit = await smtp_server("tls", accounts={USER: PASSWORD})
    wrong = await smtp_server("starttls", accounts={USER: "another-password"})
    plain = await smtp_server("plain", accounts={USER: PASSWORD})
    self_signed = await smtp_server("starttls", cert=certs.self_signed, accounts={USER: PASSWORD})
    small = await smtp_server("starttls", accounts={USER: PASSWORD}, data_size_limit=500)

    scripts = [
        Script(replies={"AUTH": f"535 5.7.8 you sent {plain_blob} and {PASSWORD}"}),
        Script(
            ehlo="250-s\n250 AUTH LOGIN",
            replies={"AUTH": "334 UGFzc3dvcmQ6", "AUTH+": f"535 bad {PASSWORD}"},
        ),
        Script(
            ehlo="250-s\n250 AUTH CRAM-MD5", replies={"AUTH": "334 PDEyMzQ+", "AUTH+": "235 ok"}
        ),
        Script(
            replies={"AUTH": "534-5.7.9 Application-specific password required\n534 5.7.9 gsmtp"}
        ),
        Script(close_in_data=True),
        Script(replies={".": f"250 OK queued as X {PASSWORD}"}),
        Script(replies={"AUTH": CLOSE}),
    ]
    scripted = [await scripted_server(script) for script in scripts]

    settings_list: list[Settings] = [
        good.settings(username=USER, ca_file=certs.ca_pem),
        implicit.settings(username=USER, ca_file=certs.ca_pem),
        wrong.settings(username=USER, ca_file=certs.ca_pem),
        plain.settings(username=USER, security="starttls"),
        plain.settings(username=USER, security="none"),
        self_signed.settings(username=USER),
        self_signed.settings(username=USER, verify_tls=False),
        small.settings(username=USER, ca_file=certs.ca_pem),
        good.settings(username=USER, security="tls", ca_file=certs.ca_pem),
        Settings.model_validate(
            {"timeout": 1, "smtp": {"host": "127.0.0.1", "port": tarpit.port, "username": USER}}
        ),
        Settings.model_validate(
            {"timeout": 1, "smtp": {"host": "127.0.0.1", "port": closed_port, "username": USER}}
        ),
        Settings.model_validate(
            {"timeout": 1, "smtp": {"host": "nothing.invalid", "username": USER}}
        ),
        *(server.settings() for server in scripted),
    ]
    for settings in settings_list:
        outcome = await run_test(settings, PASSWORD, on_event=events.append)
        seen += [str(outcome), repr(outcome), str(outcome.to_dict())]
        if outcome.failure is not None:
            seen += [str(outcome.failure), repr(outcome.failure), str(outcome.failure.to_dict())]
            seen += [str(arg) for arg in outcome.failure.args]
        # The probe and a message with an attachment too big for SIZE.
        probe = await run_test(settings, PASSWORD, on_event=events.append, probe=True)
        seen.append(str(probe.to_dict()))

    big_settings = small.settings(username=USER, ca_file=certs.ca_pem)
    transport = SmtpTransport(big_settings, PASSWORD, events.append)
    seen.append(repr(transport))
    async with transport:
        try:
            await transport.send(message(big_settings, body="x" * 2000))
        except Exception as exc:  # noqa: BLE001 - inspected below
            seen += [str(exc), repr(exc)]

    # Cancellation mid-greeting.
    slow = Settings.model_validate(
        {"timeout": 30, "smtp": {"host": "127.0.0.1", "port": tarpit.port, "username": USER}}
    )
    task = asyncio.create_task(run_test(slow, PASSWORD, on_event=events.append))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    seen += [event.format() for event in events]
    seen += [str(event.to_dict()) for event in events]
    seen += [record.getMessage() for record in caplog.records]
    seen += [str(record.args) for record in caplog.records]
    captured = capsys.readouterr()
    seen += [captured.out, captured.err]

    assert len(events) > 200  # every path really ran
    assert any("<redacted>" in event.text for event in events)
    haystack = "\n".join(seen)
    for form in forbidden_forms():
        assert form not in haystack, form
