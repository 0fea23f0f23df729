"""The service's tokens over real SMTP XOAUTH2 (aiosmtplib client, aiosmtpd server).

These prove the integration API: ``OAuthService.token_generator(settings)`` is
aiosmtplib's ``oauth_token_generator``, and its ``refresh()`` is the "535 once"
retry. They also hold the secret rule for the whole flow: no token in any log
record, exception text, repr or file.
"""

from __future__ import annotations

import base64
import logging
import ssl
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from tests.oauth.conftest import USERNAME
from tests.oauth.fakeauth import FakeAuthority, FakeClock
from tests.oauth.xoauth2 import xoauth2_server
from tests.secrets.keyrings import MemoryKeyring
from tests.smtpservers import Certs
from transports.settings import Settings
from tui.oauth import REFRESH_MARGIN, OAuthError, OAuthService


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = USERNAME
    msg["To"] = "customer@example.com"
    msg["Subject"] = "XOAUTH2 test"
    msg.set_content("hello")
    return msg


def client(port: int, tls: ssl.SSLContext, **kwargs: object) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        start_tls=True,
        tls_context=tls,
        local_hostname="client.smtpdesk.test",
        timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


async def sign_in(service: OAuthService, settings: Settings) -> None:
    await service.poll(settings, await service.start_device_flow(settings))


async def test_token_generator_is_aiosmtplibs_oauth_token_generator(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    certs: Certs,
    client_tls: ssl.SSLContext,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)

    def accepts(user: str, token: str) -> bool:
        return user == USERNAME and token in authority.access_tokens

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        smtp = client(
            port,
            client_tls,
            username=USERNAME,
            oauth_token_generator=service.token_generator(settings),
        )
        async with smtp:
            await smtp.send_message(message())
    assert log.attempts == [(USERNAME, True)]
    assert len(log.messages) == 1


async def test_an_access_token_about_to_expire_is_refreshed_before_auth(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    certs: Certs,
    client_tls: ssl.SSLContext,
    memory_keyring: MemoryKeyring,
) -> None:
    """The server accepts only the newest token: an expiring one is replaced first."""
    await sign_in(service, settings)
    clock.now += 3600 - REFRESH_MARGIN + 1

    def accepts(user: str, token: str) -> bool:
        return token == authority.issued[-2]  # the newest access token

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        smtp = client(
            port,
            client_tls,
            username=USERNAME,
            oauth_token_generator=service.token_generator(settings),
        )
        async with smtp:
            await smtp.send_message(message())
    assert len(authority.refreshes) == 1
    assert log.attempts == [(USERNAME, True)]


async def test_a_535_is_answered_by_one_refresh_and_one_retry(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    certs: Certs,
    client_tls: ssl.SSLContext,
    memory_keyring: MemoryKeyring,
) -> None:
    """A token revoked at the server before its expiry: 535, refresh, AUTH again, 235."""
    await sign_in(service, settings)
    revoked = set(authority.access_tokens)

    def accepts(user: str, token: str) -> bool:
        return token in authority.access_tokens and token not in revoked

    generator = service.token_generator(settings)
    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        async with client(port, client_tls) as smtp:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as info:
                await smtp.auth_xoauth2(USERNAME, await generator())
            assert info.value.code == 535
            reply = await smtp.auth_xoauth2(USERNAME, await generator.refresh())
            assert reply.code == 235
            await smtp.send_message(message())
    assert log.attempts == [(USERNAME, False), (USERNAME, True)]
    assert len(authority.refreshes) == 1


async def test_no_token_appears_in_logs_errors_reprs_or_files(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    certs: Certs,
    client_tls: ssl.SSLContext,
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Sign-in, refresh, SMTP, a rejected refresh: every secret stays out of every output."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    authority.poll_script = ["authorization_pending", "slow_down", None]
    code = await service.start_device_flow(settings)
    texts += [repr(code), code.message]
    status = await service.poll(settings, code)
    texts += [repr(status), *status.lines(), repr(service)]
    clock.now += 3600
    generator = service.token_generator(settings)
    texts.append(repr(generator))

    def accepts(user: str, token: str) -> bool:
        return token in authority.access_tokens

    async with xoauth2_server(certs.good.context(), accepts) as (port, _):
        smtp = client(port, client_tls, username=USERNAME, oauth_token_generator=generator)
        async with smtp:
            await smtp.send_message(message())
    authority.revoke_all()
    errors: list[OAuthError] = []
    try:
        await service.get_access_token(settings, force_refresh=True)
    except OAuthError as exc:
        errors.append(exc)
    assert len(errors) == 1
    texts += [str(errors[0]), repr(errors[0])]
    # aiosmtpd (the test server, "mail.log") logs what it receives: not smtpdesk output.
    texts += [
        record.getMessage() for record in caplog.records if not record.name.startswith("mail")
    ]
    assert any(record.name.startswith("tui.oauth") for record in caplog.records)
    assert any(record.name.startswith("httpx") for record in caplog.records)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    haystack = "\n".join(texts)
    secrets = list(authority.issued)
    assert len(secrets) == 5  # the device code; access + refresh at sign-in and at refresh
    for secret in secrets:
        assert secret not in haystack
        blob = f"user={USERNAME}\1auth=Bearer {secret}\1\1".encode()
        assert base64.b64encode(blob).decode() not in haystack
        assert base64.b64encode(secret.encode()).decode().rstrip("=") not in haystack
