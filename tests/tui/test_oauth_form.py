"""OAuth2 in the settings form at 80x24: the Authentication choice, the [oauth] fields and
their errors, the Sign in dialog and the status line, the Office 365 suggestion, the palette,
the settings round trip, and a test send with XOAUTH2 end to end (the real engine, the fake
authorization server over HTTPS and the XOAUTH2 aiosmtpd server)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Log, Select, Static

from screens.oauth import OAuthSignInScreen
from screens.settings import SettingsScreen
from screens.widgets import FieldError, Notice
from tests.oauth.dialoghost import CLIENT_ID, TENANT, mock_service
from tests.oauth.fakeauth import FakeAuthority, FakeAuthServer, FakeClock
from tests.oauth.xoauth2 import xoauth2_server
from tests.secrets.keyrings import MemoryKeyring
from tests.smtpservers import Certs
from tests.tui.conftest import write_settings
from tests.tui.fakes import FakeEngine
from transports.settings import AuthMethod, OAuthProvider, Settings
from tui.app import SmtpDeskApp, make_app
from tui.oauth import OAuthService
from tui.store import SettingsStore

SIZE = (80, 24)
MAILBOX = "billing@contoso.example"


def screen_of(app: SmtpDeskApp) -> SettingsScreen:
    for screen in app.screen_stack:
        if isinstance(screen, SettingsScreen):
            return screen
    raise AssertionError("no settings screen")


def shown(app: SmtpDeskApp, widget_id: str) -> bool:
    """Displayed, and so in the tab order (display=False leaves it)."""
    return screen_of(app).field_shown(widget_id)


def error_of(app: SmtpDeskApp, widget_id: str) -> str:
    return screen_of(app).query_one(f"#err-{widget_id}", FieldError).message


def status_line(app: SmtpDeskApp) -> str:
    return str(screen_of(app).query_one("#oauth-status", Static).render())


async def wait_for(condition: Callable[[], bool], pilot: Pilot[int]) -> None:
    for _ in range(300):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition never became true")


async def choose(pilot: Pilot[int], widget_id: str, value: object) -> None:
    """Choose a Select value (the same Select.Changed path as the keyboard)."""
    screen_of(pilot.app).query_one(f"#{widget_id}", Select).value = value  # type: ignore[arg-type]
    await pilot.pause()


async def type_in(pilot: Pilot[int], widget_id: str, text: str) -> None:
    field = screen_of(pilot.app).query_one(f"#{widget_id}", Input)  # type: ignore[arg-type]
    field.focus()
    field.value = text
    await pilot.pause()


async def fill_office365_oauth(pilot: Pilot[int]) -> None:
    """Office 365 preset, a mailbox, OAuth2 with a Microsoft app registration."""
    screen_of(pilot.app).choose_preset("office365")  # type: ignore[arg-type]
    await type_in(pilot, "smtp-username", MAILBOX)
    await choose(pilot, "smtp-auth", AuthMethod.OAUTH2)
    await type_in(pilot, "oauth-tenant", TENANT)
    await type_in(pilot, "oauth-client-id", CLIENT_ID)


def fake_app(config_path: Path, service: OAuthService | None = None) -> SmtpDeskApp:
    return make_app(
        config_path=config_path, run_test=FakeEngine(), cursor_blink=False, oauth=service
    )


async def test_the_authentication_choice_swaps_the_password_for_the_sign_in(
    config_path: Path,
) -> None:
    app = fake_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert screen.auth_method is AuthMethod.PASSWORD
        assert shown(app, "password") and shown(app, "smtp-auth")
        for widget_id in ("oauth-provider", "oauth-tenant", "oauth-client-id", "oauth-sign-in"):
            assert not shown(app, widget_id), widget_id
        assert screen.check_action("toggle_password", ()) is True

        await choose(pilot, "smtp-auth", AuthMethod.OAUTH2)
        assert screen.oauth_chosen
        assert not shown(app, "password") and not shown(app, "password-toggle")
        for widget_id in ("oauth-provider", "oauth-tenant", "oauth-client-id", "oauth-sign-in"):
            assert shown(app, widget_id), widget_id
        assert screen.query_one("#oauth-tenant", Input).value == "organizations"
        focusable = {widget.id for widget in screen.focus_chain}
        assert {"smtp-auth", "oauth-client-id", "oauth-sign-in"} <= focusable
        assert "password" not in focusable and "oauth-device-url" not in focusable
        assert screen.check_action("toggle_password", ()) is False  # ^r leaves the footer

        # The generic provider: no tenant; its URLs and scope appear under "advanced".
        assert not screen.query_one("#advanced", Checkbox).value
        await choose(pilot, "oauth-provider", OAuthProvider.GENERIC)
        assert screen.query_one("#advanced", Checkbox).value
        assert not shown(app, "oauth-tenant")
        for widget_id in ("oauth-device-url", "oauth-token-url", "oauth-scope"):
            assert shown(app, widget_id), widget_id
        screen.query_one("#advanced", Checkbox).value = False
        await pilot.pause()
        assert not shown(app, "oauth-scope")

        # HTTP has no SMTP login at all; back to SMTP + Password restores the field.
        await choose(pilot, "protocol", "http")
        assert shown(app, "password") and not shown(app, "oauth-sign-in")
        await choose(pilot, "protocol", "smtp")
        await choose(pilot, "smtp-auth", AuthMethod.PASSWORD)
        assert shown(app, "password") and not shown(app, "oauth-client-id")
        focusable = {widget.id for widget in screen.focus_chain}
        assert "password" in focusable and "oauth-sign-in" not in focusable


async def test_oauth_field_errors_are_shown_under_their_fields(config_path: Path) -> None:
    app = fake_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await fill_office365_oauth(pilot)
        assert screen.validate() is not None
        await type_in(pilot, "oauth-client-id", "my-app")
        assert "a GUID" in error_of(app, "oauth-client-id")
        await type_in(pilot, "oauth-client-id", "")
        assert error_of(app, "oauth-client-id").startswith("is required for OAuth2")
        await type_in(pilot, "oauth-client-id", f"  {CLIENT_ID} ")  # pasted with spaces
        assert error_of(app, "oauth-client-id") == ""
        await type_in(pilot, "oauth-tenant", "contoso..example")
        assert error_of(app, "oauth-tenant").startswith("must be a tenant id")
        await type_in(pilot, "oauth-tenant", TENANT)
        await type_in(pilot, "smtp-username", "")
        assert "the mailbox that signs in" in error_of(app, "smtp-username")
        await type_in(pilot, "smtp-username", MAILBOX)

        await choose(pilot, "oauth-provider", OAuthProvider.GENERIC)
        await type_in(pilot, "oauth-device-url", "http://login.example/device")
        assert "loopback" in error_of(app, "oauth-device-url")
        await type_in(pilot, "oauth-device-url", "https://login.example/device")
        assert screen.validate(show_all=True) is None
        assert error_of(app, "oauth-token-url") == "is required for the generic provider"
        assert error_of(app, "oauth-scope") == "is required for the generic provider"
        assert screen.query_one("#form-errors", Notice).text == ""  # all under their fields

        # Sign in with invalid settings opens no dialog: the errors say what to fix.
        screen.query_one("#oauth-sign-in").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert "need attention" in screen.query_one("#status", Notice).text
        assert "complete" in status_line(app)


async def test_sign_in_opens_the_dialog_and_the_status_line_says_signed_in(
    config_path: Path, memory_keyring: MemoryKeyring
) -> None:
    clock = FakeClock()
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)
    service = mock_service(authority, clock.sleep, clock)
    app = fake_app(config_path, service)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await fill_office365_oauth(pilot)
        await wait_for(lambda: screen.oauth_status is not None, pilot)
        assert status_line(app) == "Not signed in on this machine"

        # The palette offers the sign-in (and no password toggle) with OAuth2.
        titles = [command.title for command in app.get_system_commands(screen)]
        assert "Sign in (OAuth2)" in titles and "Show/Hide password" not in titles

        await pilot.click("#oauth-sign-in")
        await pilot.pause()
        await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
        await wait_for(lambda: status_line(app).startswith("Signed in"), pilot)
        assert status_line(app) == (
            f"Signed in as {MAILBOX} (token valid until 2027-01-15 09:00 UTC)"
        )
        assert screen.oauth_status is not None and screen.oauth_status.signed_in
        assert "Signed in with OAuth2" in screen.query_one("#status", Notice).text
        assert len(authority.polls) == 1 and len(memory_keyring.entries) == 1

        # Another app registration: the stored sign-in is not this one's.
        await type_in(pilot, "oauth-client-id", "0b1c2d3e-aaaa-bbbb-cccc-000000000000")
        await wait_for(lambda: "another app" in status_line(app), pilot)


async def test_the_office365_preset_suggests_oauth2_without_forcing_it(
    config_path: Path,
) -> None:
    app = fake_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        notice = screen.query_one("#auth-notice", Notice)
        assert notice.text == ""
        screen.choose_preset("office365")
        await pilot.pause()
        assert screen.auth_method is AuthMethod.PASSWORD  # suggested, not forced
        assert "end of December 2026" in notice.text and "learn.microsoft.com" in notice.text
        await choose(pilot, "smtp-auth", AuthMethod.OAUTH2)
        assert notice.text == ""
        await choose(pilot, "smtp-auth", AuthMethod.PASSWORD)
        screen.choose_preset("outlook")
        await pilot.pause()
        assert "September 2024" in notice.text and "consumers" in notice.text
        screen.choose_preset("gmail")
        await pilot.pause()
        assert notice.text == ""


async def test_oauth2_settings_are_saved_and_reload_into_the_form(
    config_path: Path, memory_keyring: MemoryKeyring
) -> None:
    app = fake_app(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        screen.choose_preset("office365")
        await type_in(pilot, "smtp-username", MAILBOX)
        await type_in(pilot, "password", "typed-before-oauth")  # then OAuth2 is chosen
        await fill_office365_oauth(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#choice-save")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Settings saved" in screen.query_one("#status", Notice).text
    saved = SettingsStore(config_path).load()
    assert saved.smtp.auth is AuthMethod.OAUTH2
    assert saved.oauth.provider is OAuthProvider.MICROSOFT
    assert (saved.oauth.tenant, saved.oauth.client_id) == (TENANT, CLIENT_ID)
    assert not memory_keyring.entries  # the typed password is not kept for OAuth2
    assert "typed-before-oauth" not in config_path.read_text()

    again = fake_app(config_path)
    async with again.run_test(size=SIZE) as pilot:
        screen = screen_of(again)
        assert screen.oauth_chosen
        assert screen.query_one("#oauth-client-id", Input).value == CLIENT_ID
        assert screen.query_one("#oauth-tenant", Input).value == TENANT
        assert shown(again, "oauth-sign-in") and not shown(again, "password")
        assert screen.validate() == saved


async def test_a_generic_provider_reloads_with_its_advanced_fields_shown(
    config_path: Path,
) -> None:
    settings = Settings.model_validate(
        {
            "smtp": {"host": "smtp.example.com", "username": MAILBOX, "auth": "oauth2"},
            "oauth": {
                "provider": "generic",
                "client_id": "desk-client",
                "device_authorization_url": "https://login.example/device",
                "token_url": "https://login.example/token",
                "scope": "smtp.send offline_access",
            },
        }
    )
    write_settings(config_path, settings)
    app = fake_app(config_path)
    async with app.run_test(size=SIZE):
        screen = screen_of(app)
        assert screen.query_one("#advanced", Checkbox).value
        assert shown(app, "oauth-token-url") and not shown(app, "oauth-tenant")
        assert screen.query_one("#oauth-scope", Input).value == "smtp.send offline_access"
        assert screen.validate() == settings


async def test_a_test_send_with_oauth2_gets_a_token_and_no_password(
    config_path: Path, certs: Certs, memory_keyring: MemoryKeyring
) -> None:
    clock = FakeClock()
    authority = FakeAuthority(clock=clock)
    client_tls = ssl.create_default_context(cafile=str(certs.ca_pem))
    service = OAuthService(verify=client_tls, sleep=clock.sleep, clock=clock, trust_env=False)

    def accepts(user: str, token: str) -> bool:
        return user == MAILBOX and token in authority.access_tokens

    async with (
        FakeAuthServer(authority, tls=certs.good.context()) as auth_server,
        xoauth2_server(certs.good.context(), accepts) as (port, server_log),
    ):
        settings = Settings.model_validate(
            {
                "timeout": 2,
                "preset": "custom",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "starttls",
                    "ca_file": str(certs.ca_pem),
                    "username": MAILBOX,
                    "auth": "oauth2",
                },
                "oauth": {
                    "provider": "generic",
                    "client_id": authority.client_id,
                    "device_authorization_url": auth_server.device_url,
                    "token_url": auth_server.token_url,
                    "scope": "https://outlook.office.com/SMTP.Send offline_access",
                },
            }
        )
        write_settings(config_path, settings)
        app = make_app(config_path=config_path, cursor_blink=False, oauth=service)  # real engine
        async with app.run_test(size=SIZE) as pilot:
            screen = screen_of(app)
            await wait_for(lambda: screen.oauth_status is not None, pilot)
            assert status_line(app) == "Not signed in on this machine"
            screen.action_sign_in()  # the dialog signs in at once (the fake clock's sleep)
            await wait_for(lambda: status_line(app).startswith("Signed in"), pilot)

            await pilot.press("ctrl+t")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            lines = list(screen.query_one("#transcript", Log).lines)
            status = str(screen.query_one("#test-status", Notice).render())
            assert status.startswith(f"✓ Test message sent to {MAILBOX}"), lines
            await wait_for(lambda: "token valid until" in status_line(app), pilot)

    assert server_log.attempts == [(MAILBOX, True)]
    assert len(server_log.messages) == 1
    assert any("AUTH XOAUTH2 <redacted>" in line for line in lines)
    assert not any("no stored password" in line for line in lines)  # no password lookup
    for secret in authority.issued:
        assert not any(secret in line for line in lines)
    assert len(memory_keyring.entries) == 1  # the sign-in only


async def test_a_test_send_with_oauth2_hands_the_engine_a_token_source(
    config_path: Path,
) -> None:
    engine = FakeEngine()
    app = make_app(config_path=config_path, run_test=engine, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await fill_office365_oauth(pilot)
        settings = screen.validate()
        assert settings is not None
        screen.start_test(settings, MAILBOX)
        await app.workers.wait_for_complete()
        await pilot.pause()
    ((_, secret, to),) = engine.calls
    assert secret is None and to == MAILBOX
    (source,) = engine.token_sources
    assert source is not None
    assert MAILBOX in repr(source)


async def test_a_sign_in_cancelled_in_the_dialog_changes_nothing(
    config_path: Path, memory_keyring: MemoryKeyring
) -> None:
    clock = FakeClock()
    authority = FakeAuthority(clock=clock, client_id=CLIENT_ID)

    async def never(seconds: float) -> None:
        await asyncio.Event().wait()

    app = fake_app(config_path, mock_service(authority, never, clock))
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await fill_office365_oauth(pilot)
        await wait_for(lambda: screen.oauth_status is not None, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Sign in (OAuth2)", "enter")
        await wait_for(lambda: isinstance(app.screen, OAuthSignInScreen), pilot)
        dialog = app.screen
        assert isinstance(dialog, OAuthSignInScreen)
        await wait_for(lambda: dialog.code is not None, pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
        assert status_line(app) == "Not signed in on this machine"
        assert not memory_keyring.entries


async def test_one_oauth_service_serves_the_form_and_the_document_sends(
    config_path: Path,
) -> None:
    service = OAuthService(trust_env=False)
    app = fake_app(config_path, service)
    async with app.run_test(size=SIZE):
        screen = screen_of(app)
        # A sign-in from the form is the one the Email dialog and batches use.
        assert app.oauth is service and screen.oauth is service
        assert app.document_services.oauth is service


async def test_a_test_send_without_a_sign_in_fails_at_auth_with_sign_in_words(
    config_path: Path, memory_keyring: MemoryKeyring
) -> None:
    settings = Settings.model_validate(
        {
            "timeout": 1,
            "smtp": {"host": "127.0.0.1", "port": 9, "username": MAILBOX, "auth": "oauth2"},
            "oauth": {"provider": "microsoft", "tenant": TENANT, "client_id": CLIENT_ID},
        }
    )
    write_settings(config_path, settings)
    service = OAuthService(trust_env=False)
    app = make_app(config_path=config_path, cursor_blink=False, oauth=service)  # real engine
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        await wait_for(lambda: screen.oauth_status is not None, pilot)
        screen.start_test(settings, MAILBOX)
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(screen.query_one("#test-status", Notice).render())
        assert status == "✗ Test failed at step AUTH: Not signed in with OAuth2 on this machine"
        assert screen.query_one("#hints-box").display
        lines = list(screen.query_one("#transcript", Log).lines)
        assert not any("no stored password" in line for line in lines)
        await wait_for(lambda: status_line(app) == "Not signed in on this machine", pilot)
    assert not memory_keyring.entries
