"""Access tokens after the sign-in: refresh, rotation, rejection, storage, status, logout."""

from __future__ import annotations

import asyncio
import json
import ssl

import keyring
import pytest

from tests.oauth.conftest import USERNAME, oauth_settings
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.secrets.keyrings import LockedKeyring, MemoryKeyring
from transports.settings import Settings
from tui.oauth import (
    LOGIN_COMMAND,
    REFRESH_MARGIN,
    REFRESH_TOKEN_ENV,
    OAuthError,
    OAuthFailure,
    OAuthService,
)

ENTRY = ("smtpdesk", f"oauth:{USERNAME}@smtp.office365.com")


async def sign_in(service: OAuthService, settings: Settings) -> str:
    """Complete a sign-in; the access token it issued."""
    code = await service.start_device_flow(settings)
    await service.poll(settings, code)
    return await service.get_access_token(settings)


def stored(keyring: MemoryKeyring) -> dict[str, object]:
    data: dict[str, object] = json.loads(keyring.entries[ENTRY])
    return data


async def test_token_is_refreshed_only_when_it_expires_within_five_minutes(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    client_tls: ssl.SSLContext,
    memory_keyring: MemoryKeyring,
) -> None:
    first = await sign_in(service, settings)
    first_refresh = stored(memory_keyring)["refresh_token"]
    clock.now += 3600 - REFRESH_MARGIN - 1  # 301 s left: still good
    assert await service.get_access_token(settings) == first
    assert authority.refreshes == []
    clock.now += 2  # 299 s left: refresh first
    second = await service.get_access_token(settings)
    assert second != first and second in authority.access_tokens
    assert len(authority.refreshes) == 1
    request = authority.refreshes[0].form
    assert request["refresh_token"] == first_refresh
    assert request["client_id"] == "smtpdesk-test-client"
    # The rotated refresh token replaced the old one in the keyring.
    after = stored(memory_keyring)
    assert after["refresh_token"] != first_refresh
    assert after["refresh_token"] in authority.refresh_tokens
    assert after["refreshed_at"] == clock.now
    # And the next refresh (a new process) works with it.
    fresh = OAuthService(verify=client_tls, clock=clock, trust_env=False)
    assert await fresh.get_access_token(settings) in authority.access_tokens
    assert len(authority.refreshes) == 2


async def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)
    authority.rotate_refresh_tokens = False
    before = stored(memory_keyring)["refresh_token"]
    await service.get_access_token(settings, force_refresh=True)
    assert stored(memory_keyring)["refresh_token"] == before


async def test_force_refresh_after_a_535(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    """The token generator's refresh() gets a new token even while the old one is valid."""
    first = await sign_in(service, settings)
    generator = service.token_generator(settings)
    assert await generator() == first
    renewed = await generator.refresh()
    assert renewed != first and len(authority.refreshes) == 1
    assert await generator() == renewed
    assert first not in repr(generator) and renewed not in repr(generator)


async def test_concurrent_callers_share_one_refresh(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)
    service.forget_access_token(settings)
    tokens = await asyncio.gather(*(service.get_access_token(settings) for _ in range(5)))
    assert len(set(tokens)) == 1
    assert len(authority.refreshes) == 1


async def test_rejected_refresh_says_sign_in_again_with_the_command(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)
    authority.revoke_all()
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings, force_refresh=True)
    assert info.value.kind is OAuthFailure.SIGN_IN_AGAIN
    assert str(info.value).endswith("sign in again: smtpdesk oauth login")
    assert "invalid_grant" in str(info.value) and USERNAME in str(info.value)
    assert LOGIN_COMMAND == "smtpdesk oauth login"


async def test_not_signed_in_names_the_command(
    service: OAuthService, settings: Settings, memory_keyring: MemoryKeyring
) -> None:
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings)
    assert info.value.kind is OAuthFailure.NOT_SIGNED_IN
    assert "sign in first: smtpdesk oauth login" in str(info.value)


async def test_a_sign_in_for_another_client_id_is_not_used(
    service: OAuthService,
    settings: Settings,
    auth_server: FakeAuthServer,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)
    other = oauth_settings(auth_server.device_url, auth_server.token_url, client_id="other-app")
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(other)
    assert info.value.kind is OAuthFailure.SIGN_IN_AGAIN
    assert "another app registration" in str(info.value)
    assert authority.refreshes == []
    status = await asyncio.to_thread(service.status, other)
    assert not status.signed_in and "settings changed" in status.description


async def test_no_keyring_when_refreshing_says_so(
    service: OAuthService, settings: Settings
) -> None:
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings)
    assert info.value.kind is OAuthFailure.NO_KEYRING
    assert "never writes it to a plain-text file" in str(info.value)


async def test_refresh_token_from_the_environment(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No keyring at all (the fail backend): the env variable is used and never written."""
    authority.refresh_tokens.add("rt-from-env-Q1w2E3")
    authority.rotate_refresh_tokens = False
    monkeypatch.setenv(REFRESH_TOKEN_ENV, "rt-from-env-Q1w2E3")
    token = await service.get_access_token(settings)
    assert token in authority.access_tokens
    status = await asyncio.to_thread(service.status, settings)
    assert status.signed_in and status.source == "env"
    assert REFRESH_TOKEN_ENV in status.description
    authority.revoke_all()
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings, force_refresh=True)
    assert info.value.kind is OAuthFailure.SIGN_IN_AGAIN
    assert f"the refresh token in {REFRESH_TOKEN_ENV} (unset or replace it)" in str(info.value)


async def test_status_shows_the_account_and_times_never_a_token(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    clock: FakeClock,
    memory_keyring: MemoryKeyring,
) -> None:
    before = await asyncio.to_thread(service.status, settings)
    assert not before.signed_in and before.source == "none"
    assert "run smtpdesk oauth login" in before.description
    token = await sign_in(service, settings)
    status = await asyncio.to_thread(service.status, settings)
    assert status.signed_in and status.source == "keyring"
    assert status.account == USERNAME
    assert status.client_id == "smtpdesk-test-client"
    assert status.signed_in_at == clock.now
    assert status.access_token_expires_at == clock.now + 3600
    text = "\n".join(status.lines()) + repr(status)
    assert "signed in: 2027-01-15 08:00:05 UTC" in text  # start + one 5 s poll
    assert f"user 'oauth:{USERNAME}@smtp.office365.com'" in text
    refresh = str(stored(memory_keyring)["refresh_token"])
    assert token not in text and refresh not in text


async def test_logout_forgets_the_sign_in(
    service: OAuthService,
    settings: Settings,
    authority: FakeAuthority,
    memory_keyring: MemoryKeyring,
) -> None:
    await sign_in(service, settings)
    assert await asyncio.to_thread(service.logout, settings) is True
    assert memory_keyring.entries == {}
    assert not (await asyncio.to_thread(service.status, settings)).signed_in
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings)
    assert info.value.kind is OAuthFailure.NOT_SIGNED_IN
    assert await asyncio.to_thread(service.logout, settings) is False


def test_logout_without_keyring_says_so(service: OAuthService, settings: Settings) -> None:
    with pytest.raises(OAuthError) as info:
        service.logout(settings)
    assert info.value.kind is OAuthFailure.NO_KEYRING


async def test_an_entry_that_is_not_ours_reads_as_not_signed_in(
    service: OAuthService, settings: Settings, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.entries[ENTRY] = "not json at all"
    status = await asyncio.to_thread(service.status, settings)
    assert not status.signed_in
    with pytest.raises(OAuthError) as info:
        await service.get_access_token(settings)
    assert info.value.kind is OAuthFailure.NOT_SIGNED_IN


class _EchoingKeyring(MemoryKeyring):
    """Reads work; a write fails with a message that echoes what it was given."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError(f"cannot store {password}")


async def test_a_failing_keyring_write_never_echoes_the_token(
    service: OAuthService, settings: Settings, authority: FakeAuthority
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(_EchoingKeyring())
    try:
        code = await service.start_device_flow(settings)
        with pytest.raises(OAuthError) as info:
            await service.poll(settings, code)
    finally:
        keyring.set_keyring(previous)
    assert info.value.kind is OAuthFailure.NO_KEYRING
    assert "<redacted>" in str(info.value)
    for secret in authority.issued:
        assert secret not in str(info.value)


async def test_a_locked_keyring_reads_as_no_keyring(
    service: OAuthService, settings: Settings
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        status = await asyncio.to_thread(service.status, settings)
        with pytest.raises(OAuthError) as info:
            await service.start_device_flow(settings)
    finally:
        keyring.set_keyring(previous)
    assert not status.signed_in and "no keyring is available" in status.description
    assert info.value.kind is OAuthFailure.NO_KEYRING
    assert "KeyringLocked" in str(info.value)
