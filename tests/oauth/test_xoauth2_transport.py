"""XOAUTH2 through smtpdesk's own SMTP transport: run_test, batches, refresh, sign-in failures.

The server is the Office-365-like aiosmtpd XOAUTH2 server (``tests.oauth.xoauth2``)
that accepts only the access tokens the fake authority issued; the tokens come
from the real service through ``tui.oauth_smtp.token_source``.
"""

from __future__ import annotations

from pathlib import Path

from tests.oauth.conftest import USERNAME
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.oauth.xoauth2 import xoauth2_server
from tests.secrets.keyrings import MemoryKeyring
from tests.smtpservers import Certs
from transports.errors import FailureClass
from transports.events import Direction, Step, TranscriptEvent
from transports.hints import OAUTH2_AUTH_HINTS
from transports.message import build_message
from transports.settings import Settings
from transports.testsend import run_test
from tui.batch import BatchJob, send_batch
from tui.oauth import REFRESH_MARGIN, OAuthService
from tui.oauth_smtp import SmtpTokenSource, token_source
from tui.sendlog import SendLog


def smtp_oauth_settings(port: int, certs: Certs, auth_server: FakeAuthServer) -> Settings:
    """OAuth2 settings: the XOAUTH2 server on ``port`` (STARTTLS), the fake authority."""
    return Settings.model_validate(
        {
            "timeout": 2,
            "preset": "office365",
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "starttls",
                "ca_file": str(certs.ca_pem),
                "username": USERNAME,
                "auth": "oauth2",
            },
            "oauth": {
                "provider": "generic",
                "client_id": "smtpdesk-test-client",
                "device_authorization_url": auth_server.device_url,
                "token_url": auth_server.token_url,
                "scope": "https://outlook.office.com/SMTP.Send offline_access",
            },
        }
    )


async def sign_in(service: OAuthService, settings: Settings) -> None:
    await service.poll(settings, await service.start_device_flow(settings))


def source(service: OAuthService, settings: Settings) -> SmtpTokenSource:
    found = token_source(settings, service)
    assert found is not None
    return found


def transcript(events: list[TranscriptEvent]) -> str:
    return "\n".join(event.format() for event in events)


async def test_the_test_send_succeeds_with_an_issued_token(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    def accepts(user: str, token: str) -> bool:
        return user == USERNAME and token in authority.access_tokens

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        events: list[TranscriptEvent] = []
        outcome = await run_test(
            settings, None, on_event=events.append, token_source=source(service, settings)
        )
    assert outcome.ok, outcome.failure
    assert log.attempts == [(USERNAME, True)]
    assert len(log.messages) == 1 and b"OAuth2 (XOAUTH2" in log.messages[0]
    text = transcript(events)
    assert "AUTH XOAUTH2 <redacted>" in text
    assert "using XOAUTH2" in text
    assert not authority.refreshes  # the token from the sign-in was still fresh
    for secret in authority.issued:
        assert secret not in text


async def test_an_expired_access_token_is_refreshed_and_the_send_succeeds(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    clock: FakeClock,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    def accepts(user: str, token: str) -> bool:
        return token == authority.issued[-2]  # only the newest access token

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        clock.now += 3600 - REFRESH_MARGIN + 1
        outcome = await run_test(
            settings, None, on_event=lambda e: None, token_source=source(service, settings)
        )
    assert outcome.ok, outcome.failure
    assert len(authority.refreshes) == 1
    assert log.attempts == [(USERNAME, True)]


async def test_a_535_triggers_one_refresh_and_the_send_succeeds(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    """A token revoked at the server before its expiry: 535, refresh, AUTH again, 235."""
    revoked: set[str] = set()

    def accepts(user: str, token: str) -> bool:
        return token in authority.access_tokens and token not in revoked

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        revoked |= authority.access_tokens
        events: list[TranscriptEvent] = []
        outcome = await run_test(
            settings, None, on_event=events.append, token_source=source(service, settings)
        )
    assert outcome.ok, outcome.failure
    assert log.attempts == [(USERNAME, False), (USERNAME, True)]
    assert len(authority.refreshes) == 1
    text = transcript(events)
    assert text.count("AUTH XOAUTH2 <redacted>") == 2
    assert "535 5.7.3 Authentication unsuccessful" in text
    assert "the server's XOAUTH2 error: " in text and '"status": "401"' in text
    assert "getting a new one and trying once more" in text
    for secret in authority.issued:
        assert secret not in text


async def test_a_second_535_fails_with_sign_in_again_and_no_second_refresh(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    async with xoauth2_server(certs.good.context(), lambda user, token: False) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        outcome = await run_test(
            settings, None, on_event=lambda e: None, token_source=source(service, settings)
        )
    failure = outcome.failure
    assert not outcome.ok and failure is not None
    assert failure.step is Step.AUTH and failure.reply_code == 535
    assert failure.failure_class is FailureClass.AUTH_FAILED
    assert "even after a refresh: sign in again: smtpdesk oauth login" in failure.detail
    assert failure.hints[: len(OAUTH2_AUTH_HINTS)] == OAUTH2_AUTH_HINTS
    assert not any("app password" in hint for hint in failure.hints)
    assert log.attempts == [(USERNAME, False), (USERNAME, False)]
    assert len(authority.refreshes) == 1


async def test_not_signed_in_fails_at_auth_before_connecting(
    service: OAuthService,
    auth_server: FakeAuthServer,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    async with xoauth2_server(certs.good.context(), lambda user, token: True) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        events: list[TranscriptEvent] = []
        outcome = await run_test(
            settings, None, on_event=events.append, token_source=source(service, settings)
        )
    failure = outcome.failure
    assert failure is not None
    assert failure.failure_class is FailureClass.OAUTH_SIGN_IN and failure.step is Step.AUTH
    assert failure.title == "Not signed in with OAuth2 on this machine"
    assert "smtpdesk oauth login" in failure.detail
    assert any("smtpdesk oauth login" in hint for hint in failure.hints)
    assert not failure.retryable
    assert not log.attempts
    assert not any(event.step is Step.CONNECT for event in events)
    assert events[-1].direction is Direction.ERROR


async def test_a_revoked_sign_in_says_sign_in_again(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    clock: FakeClock,
    certs: Certs,
    memory_keyring: MemoryKeyring,
) -> None:
    async with xoauth2_server(certs.good.context(), lambda user, token: True) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        authority.revoke_all()
        clock.now += 3600
        outcome = await run_test(
            settings, None, on_event=lambda e: None, token_source=source(service, settings)
        )
    failure = outcome.failure
    assert failure is not None and failure.failure_class is FailureClass.OAUTH_SIGN_IN
    assert failure.title == "The OAuth2 sign-in is no longer accepted"
    assert "sign in again: smtpdesk oauth login" in failure.detail
    assert not log.attempts


async def test_without_a_token_source_oauth2_settings_fail_clearly(
    auth_server: FakeAuthServer, certs: Certs
) -> None:
    settings = smtp_oauth_settings(1, certs, auth_server)
    outcome = await run_test(settings, None, on_event=lambda e: None)
    assert outcome.failure is not None
    assert outcome.failure.failure_class is FailureClass.OAUTH_SIGN_IN
    assert "smtpdesk oauth login" in str(outcome.failure)


async def test_a_batch_sends_every_message_on_one_token(
    service: OAuthService,
    authority: FakeAuthority,
    auth_server: FakeAuthServer,
    certs: Certs,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    def accepts(user: str, token: str) -> bool:
        return token in authority.access_tokens

    async with xoauth2_server(certs.good.context(), accepts) as (port, log):
        settings = smtp_oauth_settings(port, certs, auth_server)
        await sign_in(service, settings)
        jobs = [
            BatchJob(
                job_id=f"INV-{n}",
                message=build_message(
                    settings, to=[f"customer{n}@example.com"], subject=f"Invoice {n}", body="hi"
                ),
            )
            for n in range(3)
        ]
        with SendLog(tmp_path / "sendlog.sqlite3") as send_log:
            report = await send_batch(
                settings,
                None,
                jobs,
                log=send_log,
                token_source=source(service, settings),
            )
    assert len(report.sent) == 3 and report.connections == 1
    assert log.attempts == [(USERNAME, True)]
    assert len(log.messages) == 3


def test_token_source_is_only_for_oauth2_smtp(service: OAuthService) -> None:
    password = Settings.model_validate({"smtp": {"host": "mail.example.com", "username": USERNAME}})
    assert token_source(password, service) is None
