"""The device authorization grant against the fake HTTPS authority: every outcome."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl

import pytest

from tests.oauth.conftest import USERNAME, oauth_settings
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.secrets.keyrings import MemoryKeyring
from tests.smtpservers import Certs
from transports.settings import Settings
from tui.oauth import (
    LOGIN_COMMAND,
    MICROSOFT_SCOPE,
    NO_KEYRING_HELP,
    DeviceCode,
    OAuthError,
    OAuthFailure,
    OAuthService,
    PollUpdate,
    endpoints,
    keyring_user,
)
from tui.secrets import SERVICE

ENTRY = ("smtpdesk", f"oauth:{USERNAME}@smtp.office365.com")


async def test_pending_then_success_stores_the_sign_in(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    """Two pending answers, then tokens: the refresh token lands in the keyring."""
    authority.poll_script = ["authorization_pending", "authorization_pending", None]
    code = await service.start_device_flow(settings)
    assert code.user_code == "BXKQ-7RTM"
    assert code.verification_uri == "https://microsoft.com/devicelogin"
    assert code.interval == 5 and code.expires_in == 900
    assert "BXKQ-7RTM" in code.message and "https://microsoft.com/devicelogin" in code.message
    status = await service.poll(settings, code)
    assert status.signed_in and status.source == "keyring"
    assert len(authority.polls) == 3
    stored = json.loads(memory_keyring.entries[ENTRY])
    assert stored["refresh_token"] in authority.refresh_tokens
    assert stored["client_id"] == "smtpdesk-test-client"
    # The access token of the sign-in is used at once: no refresh request.
    token = await service.get_access_token(settings)
    assert token in authority.access_tokens
    assert authority.refreshes == []
    # The device request carried the client id and the scope; no secret was sent.
    device_request = authority.seen[0]
    assert device_request.form == {
        "client_id": "smtpdesk-test-client",
        "scope": "https://outlook.office.com/SMTP.Send offline_access",
    }
    assert keyring_user(settings) == ENTRY[1] and SERVICE == ENTRY[0]


async def test_polls_keep_the_interval_and_slow_down_adds_five_seconds(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.poll_script = ["authorization_pending", "slow_down", "authorization_pending", None]
    updates: list[PollUpdate] = []
    code = await service.start_device_flow(settings)
    await service.poll(settings, code, on_update=updates.append)
    assert clock.sleeps == [5, 5, 10, 10]
    times = [seen.at for seen in authority.polls]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [5, 10, 10]
    assert [(u.attempt, u.interval, u.state) for u in updates] == [
        (0, 5, "waiting"),
        (1, 5, "waiting"),
        (2, 10, "slow_down"),
        (3, 10, "waiting"),
    ]
    assert updates[0].seconds_left == 900


async def test_expired_token_says_start_again(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.poll_script = ["authorization_pending", "expired_token"]
    code = await service.start_device_flow(settings)
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code)
    assert info.value.kind is OAuthFailure.EXPIRED
    assert "BXKQ-7RTM expired" in str(info.value)
    assert f"Start again: {LOGIN_COMMAND}" in str(info.value)
    assert memory_keyring.entries == {}


async def test_pending_until_the_code_runs_out_stops_locally(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    memory_keyring: MemoryKeyring,
) -> None:
    """A server that only ever says pending: the client stops at expires_in, not later."""
    authority.poll_script = ["authorization_pending"]
    authority.expires_in = 60
    authority.interval = 7
    code = await service.start_device_flow(settings)
    start = clock.now
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code)
    assert info.value.kind is OAuthFailure.EXPIRED
    assert "nobody completed the sign-in within 1 minutes" in str(info.value)
    assert "authorization_pending" in str(info.value)
    assert len(authority.polls) == 8  # at 7, 14, … 56 s; the wait to 63 s ends it
    assert clock.now - start == 63
    assert memory_keyring.entries == {}


@pytest.mark.parametrize("error", ["access_denied", "authorization_declined"])
async def test_access_denied(
    error: str,
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.poll_script = ["authorization_pending", error]
    code = await service.start_device_flow(settings)
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code)
    assert info.value.kind is OAuthFailure.ACCESS_DENIED
    assert "declined" in str(info.value) and "administrator" in str(info.value)
    assert memory_keyring.entries == {}


async def test_unknown_client_id_is_named(
    service: OAuthService, auth_server: FakeAuthServer, memory_keyring: MemoryKeyring
) -> None:
    settings = oauth_settings(auth_server.device_url, auth_server.token_url, client_id="wrong-id")
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    text = str(info.value)
    assert info.value.kind is OAuthFailure.UNKNOWN_CLIENT
    assert "'wrong-id'" in text and "oauth.client_id" in text and "AADSTS700016" in text
    # Only the first line of Microsoft's description: no trace ids, no CR/LF.
    assert "Trace ID" not in text and "\r" not in text and "\n" not in text


async def test_public_client_flows_disabled_says_where_to_switch_them_on(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.device_error = {
        "error": "invalid_client",
        "error_description": "AADSTS7000218: The request body must contain the following "
        "parameter: 'client_assertion' or 'client_secret'.",
        "error_codes": [7000218],
    }
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    assert info.value.kind is OAuthFailure.PUBLIC_CLIENT_DISABLED
    assert "'Allow public client flows' to Yes" in str(info.value)


async def test_unknown_tenant(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.device_error = {
        "error": "invalid_request",
        "error_description": "AADSTS90002: Tenant 'nope' not found.",
        "error_codes": [90002],
    }
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    assert info.value.kind is OAuthFailure.TENANT_NOT_FOUND
    assert "oauth.tenant" in str(info.value)


async def test_unknown_client_while_polling(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    code = await service.start_device_flow(settings)
    authority.token_error = {"error": "invalid_client", "error_description": "AADSTS700016: no"}
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code)
    assert info.value.kind is OAuthFailure.UNKNOWN_CLIENT


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_server_unreachable(service: OAuthService, memory_keyring: MemoryKeyring) -> None:
    port = _closed_port()
    settings = oauth_settings(f"https://127.0.0.1:{port}/device", f"https://127.0.0.1:{port}/token")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    assert loop.time() - started < 1.5
    assert info.value.kind is OAuthFailure.UNREACHABLE and info.value.retryable
    assert "Cannot reach the sign-in server 127.0.0.1: the connection was refused" in str(
        info.value
    )


async def test_untrusted_certificate_is_refused(
    service: OAuthService, certs: Certs, authority: FakeAuthority, memory_keyring: MemoryKeyring
) -> None:
    async with FakeAuthServer(authority, tls=certs.untrusted.context()) as server:
        settings = oauth_settings(server.device_url, server.token_url)
        with pytest.raises(OAuthError) as info:
            await service.start_device_flow(settings)
    assert info.value.kind is OAuthFailure.TLS
    assert "not trusted" in str(info.value)
    assert authority.seen == []


async def test_server_that_never_answers_times_out(
    service: OAuthService,
    auth_server: FakeAuthServer,
    settings: Settings,
    memory_keyring: MemoryKeyring,
) -> None:
    quick = settings.model_copy(update={"timeout": 1.0})
    auth_server.hang = True
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(quick)
    assert info.value.kind is OAuthFailure.UNREACHABLE
    assert "did not answer within 1 s" in str(info.value)


async def test_a_temporary_failure_while_polling_is_retried(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    updates: list[PollUpdate] = []
    code = await service.start_device_flow(settings)
    authority.fail_next = [503]
    status = await service.poll(settings, code, on_update=updates.append)
    assert status.signed_in
    assert [u.state for u in updates] == ["waiting", "retrying"]


async def test_repeated_server_trouble_gives_up(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    code = await service.start_device_flow(settings)
    authority.fail_next = [503, 502, 500]
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code)
    assert info.value.kind is OAuthFailure.SERVER_ERROR
    assert "has trouble (HTTP 500)" in str(info.value)


async def test_cancel_with_an_event_ends_the_wait_at_once(
    client_tls: ssl.SSLContext,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    """Real asyncio.sleep and a 5 s interval: the event ends the wait without waiting."""
    service = OAuthService(verify=client_tls, trust_env=False)
    authority.poll_script = ["authorization_pending"]
    cancel = asyncio.Event()
    code = await service.start_device_flow(settings)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, cancel.set)
    started = loop.time()
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code, cancel=cancel)
    assert loop.time() - started < 1
    assert info.value.kind is OAuthFailure.CANCELLED
    assert str(info.value) == "Sign-in cancelled: nothing was stored."
    assert authority.polls == [] and memory_keyring.entries == {}


async def test_cancel_after_a_poll(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.poll_script = ["authorization_pending"]
    cancel = asyncio.Event()

    def on_update(update: PollUpdate) -> None:
        if update.attempt == 2:
            cancel.set()

    code = await service.start_device_flow(settings)
    with pytest.raises(OAuthError) as info:
        await service.poll(settings, code, cancel=cancel, on_update=on_update)
    assert info.value.kind is OAuthFailure.CANCELLED
    assert len(authority.polls) == 2


async def test_cancelling_the_task_stores_nothing(
    settings: Settings,
    client_tls: ssl.SSLContext,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    never = asyncio.Event()

    async def sleep_forever(seconds: float) -> None:
        await never.wait()

    service = OAuthService(verify=client_tls, sleep=sleep_forever, trust_env=False)
    code = await service.start_device_flow(settings)
    task = asyncio.create_task(service.poll(settings, code))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert memory_keyring.entries == {}


async def test_login_shows_the_code_then_polls(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    shown: list[DeviceCode] = []

    async def show(code: DeviceCode) -> None:
        assert authority.polls == []  # shown before the first poll
        shown.append(code)

    status = await service.login(settings, show)
    assert [c.user_code for c in shown] == ["BXKQ-7RTM"]
    assert status.signed_in


async def test_no_keyring_refuses_before_showing_a_code(
    service: OAuthService, settings: Settings, authority: FakeAuthority
) -> None:
    """conftest sets PYTHON_KEYRING_BACKEND to the fail backend: the headless case."""
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    assert info.value.kind is OAuthFailure.NO_KEYRING
    assert str(info.value).startswith(NO_KEYRING_HELP)
    assert "SMTPDESK_OAUTH_REFRESH_TOKEN" in str(info.value)
    assert authority.seen == []


async def test_not_configured_names_the_settings(service: OAuthService) -> None:
    settings = Settings.model_validate(
        {"smtp": {"host": "smtp.office365.com", "from_address": "me@example.com"}}
    )
    with pytest.raises(OAuthError) as info:
        await service.start_device_flow(settings)
    assert info.value.kind is OAuthFailure.NOT_CONFIGURED
    assert "smtp.username" in str(info.value) and "oauth.client_id" in str(info.value)


async def test_server_text_cannot_inject_terminal_escapes(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    authority.message = "To sign in\x1b[2J\x1b]0;pwned\x07 enter BXKQ-7RTM\r\nnow"
    code = await service.start_device_flow(settings)
    assert "\x1b" not in code.message and "\x07" not in code.message
    assert "\n" not in code.message and "BXKQ-7RTM" in code.message


def test_device_code_repr_hides_the_device_code() -> None:
    code = DeviceCode("ABCD", "https://x.example/", None, 900, 5, "m", "dc-secret", 0.0)
    assert "dc-secret" not in repr(code)


def test_microsoft_endpoints_follow_the_tenant() -> None:
    settings = Settings.model_validate(
        {
            "preset": "office365",
            "smtp": {"host": "smtp.office365.com", "username": USERNAME, "auth": "oauth2"},
            "oauth": {
                "tenant": "contoso.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555",
            },
        }
    )
    found = endpoints(settings)
    assert found.device_authorization_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
    )
    assert found.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert found.scope == MICROSOFT_SCOPE == "https://outlook.office.com/SMTP.Send offline_access"
