"""The password never appears in any event, exception, failure, log record or output.

Every success and failure path runs with a recognisable password; the test
looks for it plain and base64 (alone, and as the AUTH PLAIN blob).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl

import keyring
import pytest

from tests.oauth.conftest import USERNAME as OAUTH_USER
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.oauth.test_xoauth2_transport import smtp_oauth_settings
from tests.oauth.xoauth2 import xoauth2_server
from tests.secrets.keyrings import MemoryKeyring
from tests.smtpservers import CLOSE, Certs, Script, ScriptedFactory, SmtpServerFactory, Tarpit
from tests.transports.helpers import PASSWORD, USER, message
from transports.events import TranscriptEvent
from transports.settings import Settings
from transports.smtp import SmtpTransport
from transports.testsend import run_test
from tui.oauth import OAuthService
from tui.oauth_smtp import token_source


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


async def test_no_oauth2_path_leaks_a_token(
    certs: Certs,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """XOAUTH2 through the transport: success, refresh before AUTH, 535 → refresh, two 535s,
    a revoked sign-in and a batch; no access, refresh or device token anywhere."""
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    authority = FakeAuthority(clock=clock)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    seen: list[str] = []
    events: list[TranscriptEvent] = []
    refused: set[str] = set()
    reject_all = False

    def accepts(user: str, token: str) -> bool:
        return not reject_all and token in authority.access_tokens and token not in refused

    try:
        async with (
            FakeAuthServer(authority, tls=certs.good.context()) as auth,
            xoauth2_server(certs.good.context(), accepts) as (port, _log),
        ):
            tls = ssl.create_default_context(cafile=str(certs.ca_pem))
            service = OAuthService(verify=tls, sleep=clock.sleep, clock=clock, trust_env=False)
            settings = smtp_oauth_settings(port, certs, auth)
            code = await service.start_device_flow(settings)
            await service.poll(settings, code)
            source = token_source(settings, service)
            seen += [repr(source), repr(service)]

            async def test_send() -> None:
                outcome = await run_test(
                    settings, None, on_event=events.append, token_source=source
                )
                seen.extend([str(outcome), str(outcome.to_dict())])
                if outcome.failure is not None:
                    seen.extend([str(outcome.failure), repr(outcome.failure)])

            await test_send()  # the token from the sign-in
            clock.now += 3600  # expired: refreshed before AUTH
            await test_send()
            refused |= authority.access_tokens  # revoked at the server: 535, refresh, 235
            await test_send()
            reject_all = True  # 535 twice: sign in again
            await test_send()
            reject_all = False
            transport = SmtpTransport(settings, None, events.append, token_source=source)
            seen.append(repr(transport))
            async with transport:
                result = await transport.send(message(settings))
            seen.append(str(result.to_dict()))
            authority.revoke_all()
            clock.now += 3600
            await test_send()  # the refresh is refused: sign in again
    finally:
        keyring.set_keyring(previous)

    seen += [event.format() for event in events]
    seen += [str(event.to_dict()) for event in events]
    # aiosmtpd (the test server, "mail.log") logs what it receives: not smtpdesk output.
    seen += [r.getMessage() for r in caplog.records if not r.name.startswith("mail")]
    captured = capsys.readouterr()
    seen += [captured.out, captured.err]
    haystack = "\n".join(seen)
    assert sum("AUTH XOAUTH2 <redacted>" in event.text for event in events) >= 6
    assert len(authority.issued) >= 9  # device code + several access/refresh tokens
    for secret in authority.issued:
        assert secret not in haystack
        blob = f"user={OAUTH_USER}\1auth=Bearer {secret}\1\1".encode()
        encoded = base64.b64encode(blob).decode()
        assert encoded not in haystack and encoded.rstrip("=") not in haystack
        assert base64.b64encode(secret.encode()).decode().rstrip("=") not in haystack
