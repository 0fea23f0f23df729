"""``smtpdesk oauth login | status | logout`` and OAuth2 sends, end to end in subprocesses.

The fake authorization server (HTTPS, test CA) and the XOAUTH2 SMTP server run
in the test's loop; the CLI trusts the test CA through ``SSL_CERT_FILE`` (httpx
honours it) and keeps the sign-in in a file-backed test keyring shared with
the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_cli import Run, cli_env, smtpdesk, write_config
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.oauth.test_xoauth2_transport import smtp_oauth_settings
from tests.oauth.xoauth2 import XOAuth2Log, xoauth2_server
from tests.smtpservers import Certs

USER = "me@contoso.example"


@dataclass
class World:
    authority: FakeAuthority
    auth: FakeAuthServer
    smtp_log: XOAuth2Log
    config: Path
    keyring_file: Path
    env: dict[str, str]

    async def run(self, *args: str) -> Run:
        return await smtpdesk("--config", str(self.config), *args, env=self.env)

    def assert_no_token(self, *runs: Run) -> None:
        for run in runs:
            for secret in self.authority.issued:
                assert secret not in run.out and secret not in run.err


@pytest.fixture
async def world(tmp_path: Path, certs: Certs) -> AsyncIterator[World]:
    authority = FakeAuthority(clock=FakeClock(), interval=1)

    def accepts(user: str, token: str) -> bool:
        return user == USER and token in authority.access_tokens

    async with (
        FakeAuthServer(authority, tls=certs.good.context()) as auth,
        xoauth2_server(certs.good.context(), accepts) as (port, log),
    ):
        config = write_config(tmp_path, smtp_oauth_settings(port, certs, auth))
        keyring_file = tmp_path / "keyring.json"
        env = cli_env(
            PYTHON_KEYRING_BACKEND="tests.secrets.keyrings.FileKeyring",
            SMTPDESK_TEST_KEYRING_FILE=str(keyring_file),
            SSL_CERT_FILE=str(certs.ca_pem),
        )
        yield World(authority, auth, log, config, keyring_file, env)


async def test_login_status_test_send_logout(world: World) -> None:
    login = await world.run("oauth", "login")
    assert login.code == 0, login.err
    assert "    https://microsoft.com/devicelogin" in login.lines
    assert "    BXKQ-7RTM" in login.lines
    assert "OK: signed in" in login.out
    assert f"account: {USER}" in login.out
    assert len(world.authority.polls) == 1
    stored = json.loads(world.keyring_file.read_text())
    assert list(stored) == [f"smtpdesk/oauth:{USER}@127.0.0.1"]

    status = await world.run("oauth", "status")
    assert status.code == 0 and "signed in; the sign-in is kept in" in status.out
    status_json = await world.run("oauth", "status", "--json")
    record = json.loads(status_json.out)
    assert record["signed_in"] is True and record["source"] == "keyring"

    # A new process: no access token in memory, so the stored sign-in is refreshed.
    test = await world.run("test")
    assert test.code == 0, test.out + test.err
    assert "AUTH XOAUTH2 <redacted>" in test.out
    assert "OK: the test passed" in test.out
    assert len(world.authority.refreshes) == 1

    send = await world.run("send", "--to", "customer@example.com", "--subject", "Hi")
    assert send.code == 0, send.out + send.err
    assert len(world.smtp_log.messages) == 2
    assert all(ok for _user, ok in world.smtp_log.attempts)

    show = await world.run("show")
    assert show.code == 0
    assert f"# authentication: OAuth2 (XOAUTH2) for {USER}: signed in" in show.out
    assert "# password:" not in show.out
    show_json = json.loads((await world.run("show", "--json")).out)
    assert show_json["oauth"]["signed_in"] is True
    assert show_json["password"]["kind"] == "oauth2"

    password = await world.run("password", "clear")
    assert password.code == 2 and "smtpdesk oauth login" in password.err

    logout = await world.run("oauth", "logout")
    assert logout.code == 0 and "signed out" in logout.out
    assert json.loads(world.keyring_file.read_text()) == {}
    again = await world.run("oauth", "logout")
    assert again.code == 0 and "nothing to remove" in again.out
    status = await world.run("oauth", "status")
    assert status.code == 1 and "not signed in on this machine" in status.out

    failed = await world.run("test")
    assert failed.code == 1
    assert "FAILED at step 'auth': Not signed in with OAuth2 on this machine" in failed.out
    assert "smtpdesk oauth login" in failed.out
    world.assert_no_token(login, status, status_json, test, send, show, logout, failed)


async def test_login_declined_exits_1_and_stores_nothing(world: World) -> None:
    world.authority.poll_script = ["authorization_pending", "access_denied"]
    run = await world.run("oauth", "login")
    assert run.code == 1
    assert "BXKQ-7RTM" in run.out
    assert "declined (access_denied)" in run.err
    assert not world.keyring_file.exists() or json.loads(world.keyring_file.read_text()) == {}


async def test_login_with_an_unknown_client_id_exits_1(world: World) -> None:
    world.authority.client_id = "another-client"
    run = await world.run("oauth", "login")
    assert run.code == 1
    assert "BXKQ-7RTM" not in run.out
    assert "does not accept the client id 'smtpdesk-test-client'" in run.err
    assert "oauth.client_id" in run.err


async def test_login_without_a_keyring_exits_1_with_the_alternatives(world: World) -> None:
    world.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    run = await world.run("oauth", "login")
    assert run.code == 1
    assert "SMTPDESK_OAUTH_REFRESH_TOKEN" in run.err
    assert not world.authority.seen  # refused before any code was asked for


async def test_oauth_commands_need_oauth2_settings(tmp_path: Path) -> None:
    from transports.settings import Settings

    settings = Settings.model_validate({"smtp": {"host": "mail.example.com", "username": USER}})
    config = write_config(tmp_path, settings)
    for action in ("login", "status", "logout"):
        run = await smtpdesk("--config", str(config), "oauth", action)
        assert run.code == 2, action
        assert 'smtp.auth is not "oauth2"' in run.err
    demo = await smtpdesk("--demo", "oauth", "status")
    assert demo.code == 2
