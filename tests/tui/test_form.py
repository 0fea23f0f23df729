"""The settings form at 80x24: reactive rules, validation under the fields, presets,
the password field, loading (including a corrupt file) and the command palette."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, Select, Static

from screens.settings import SettingsScreen
from screens.widgets import FieldError, Notice, PasswordInput
from tests.tui.conftest import write_settings
from tests.tui.fakes import FakeEngine
from transports.presets import PRESETS
from transports.settings import Protocol, Security, Settings
from tui.app import SmtpDeskApp, make_app

SIZE = (80, 24)


def app_for(config_path: Path) -> SmtpDeskApp:
    return make_app(config_path=config_path, run_test=FakeEngine(), cursor_blink=False)


def screen_of(app: SmtpDeskApp) -> SettingsScreen:
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    return screen


def shown(app: SmtpDeskApp, selector: str) -> bool:
    """Displayed, and so in the tab order (display=False leaves it)."""
    return screen_of(app).field_shown(selector.lstrip("#"))


async def type_in(pilot: Pilot[int], selector: str, text: str, *, keys: bool = False) -> None:
    """Focus a field and replace its value: by pressing keys as a person would, or
    (faster, the same Input.Changed path) by setting the value."""
    screen = pilot.app.screen
    assert isinstance(screen, SettingsScreen)
    field = screen.query_one(selector, Input)
    field.focus()
    if keys:
        await pilot.press("ctrl+u", *text)
    else:
        field.value = text
    await pilot.pause()


def error_of(app: SmtpDeskApp, widget_id: str) -> str:
    return screen_of(app).query_one(f"#err-{widget_id}", FieldError).message


async def test_empty_form_shows_no_errors_until_a_field_is_left(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert screen.preset_key == "custom"
        assert all(not label.message for label in screen.query(FieldError))
        await type_in(pilot, "#smtp-host", "smtp example.com", keys=True)
        assert error_of(app, "smtp-host") == "must not contain spaces"
        await type_in(pilot, "#smtp-host", "")
        assert error_of(app, "smtp-host") == "is required for SMTP"
        await type_in(pilot, "#smtp-host", "mail.example.com")
        assert error_of(app, "smtp-host") == ""


async def test_http_shows_url_and_reply_address_and_hides_smtp_fields(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert shown(app, "#smtp-host") and not shown(app, "#http-url")
        screen.query_one("#protocol", Select).value = Protocol.HTTP
        await pilot.pause()
        assert shown(app, "#http-url") and shown(app, "#reply-to")
        for selector in ("#smtp-host", "#smtp-port", "#smtp-username", "#no-verify"):
            assert not shown(app, selector), selector
        focusable = {widget.id for widget in screen.focus_chain}
        assert "smtp-host" not in focusable and "http-url" in focusable
        assert "Reply address" in str(screen.query_one("#reply-to-label", Static).render())
        await type_in(pilot, "#http-url", "http://relay.example/send")
        assert "loopback" in error_of(app, "http-url")
        await type_in(pilot, "#http-url", "http://127.0.0.1:8025/send")
        assert error_of(app, "http-url") == ""
        assert "not encrypted" in screen.query_one("#http-warning", Notice).text
        settings = screen.validate(show_all=True)
        assert settings is None
        assert error_of(app, "reply-to").startswith("is required for HTTP")
        await type_in(pilot, "#reply-to", "billing@acme.example")
        settings = screen.validate()
        assert settings is not None and settings.protocol is Protocol.HTTP
        assert settings.reply_to == "billing@acme.example"


async def test_username_not_an_address_reveals_from(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        await type_in(pilot, "#smtp-username", "me@acme.example")
        assert not shown(app, "#smtp-from-address")
        await type_in(pilot, "#smtp-username", "acme-mailer")
        assert shown(app, "#smtp-from-address")
        await type_in(pilot, "#smtp-host", "mail.acme.example")
        settings = screen_of(app).validate(show_all=True)
        assert settings is None
        assert "not an email address" in error_of(app, "smtp-from-address")
        await type_in(pilot, "#smtp-from-address", "billing@acme.example")
        settings = screen_of(app).validate()
        assert settings is not None and settings.sender == "billing@acme.example"


async def test_copy_and_reply_checkboxes_reveal_their_fields(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert not shown(app, "#copy-to") and not shown(app, "#reply-to")
        screen.query_one("#copy-enabled", Checkbox).focus()
        await pilot.press("space")
        await pilot.pause()
        assert shown(app, "#copy-to")
        screen.query_one("#reply-enabled", Checkbox).focus()
        await pilot.press("space")
        await pilot.pause()
        assert shown(app, "#reply-to")
        assert "Reply-To" in str(screen.query_one("#reply-to-label", Static).render())
        screen.query_one("#copy-to", Input).value = "archive@acme.example\nBcc: x@evil.example"
        await pilot.pause()
        assert "line break" in error_of(app, "copy-to")
        await type_in(pilot, "#copy-to", "not an address")
        assert "not a valid email address" in error_of(app, "copy-to")
        screen.query_one("#copy-enabled", Checkbox).value = False
        await pilot.pause()
        assert not shown(app, "#copy-to")
        assert screen.form_data()["copy_to"] == ""


async def test_security_follows_the_port_with_warnings(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        security = screen.query_one("#smtp-security", Select)
        warning = screen.query_one("#security-warning", Notice)
        await type_in(pilot, "#smtp-port", "465")
        assert security.value == Security.TLS and warning.text == ""
        await type_in(pilot, "#smtp-port", "587")
        assert security.value == Security.STARTTLS
        await type_in(pilot, "#smtp-port", "25", keys=True)
        assert security.value == Security.STARTTLS
        assert "Port 25" in warning.text
        security.value = Security.NONE
        await pilot.pause()
        assert "No encryption" in warning.text
        await type_in(pilot, "#smtp-port", "70000")
        assert error_of(app, "smtp-port") == "must be between 1 and 65535"


async def test_do_not_verify_warns_and_is_refused_for_strict_presets(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        box = screen.query_one("#no-verify", Checkbox)
        notice = screen.query_one("#verify-warning", Notice)
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value is True and "self-signed" in notice.text
        await pilot.press("space")
        await pilot.pause()
        assert notice.text == ""
        for key in ("gmail", "yahoo", "office365"):
            screen.choose_preset(key)
            await pilot.pause()
            box.focus()
            await pilot.press("space")
            await pilot.pause()
            assert box.value is False, key
            assert notice.text.startswith(f"Refused for {PRESETS[key].label}"), notice.text
            assert "intercepted" in notice.text


async def test_trusted_certificate_file_sits_under_advanced(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        assert not shown(app, "#smtp-ca-file") and not shown(app, "#timeout")
        screen.query_one("#advanced", Checkbox).focus()
        await pilot.press("space")
        await pilot.pause()
        assert shown(app, "#smtp-ca-file") and shown(app, "#timeout")
        await type_in(pilot, "#timeout", "0.5")
        assert error_of(app, "timeout") == "must be between 1 and 600 seconds"


async def test_each_preset_fills_the_server_and_guidance(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        picker = screen.query_one("#preset", Select)
        for key, preset in PRESETS.items():
            if key == "custom":
                continue
            picker.focus()
            await pilot.press("enter")  # open the list
            await pilot.pause()
            # move through the open list with the keys, as a person would
            index = list(PRESETS).index(key)
            await pilot.press("home", *["down"] * index, "enter")
            await pilot.pause()
            assert screen.preset_key == key
            assert screen.query_one("#smtp-host", Input).value == preset.host, key
            assert screen.query_one("#smtp-port", Input).value == str(preset.port)
            assert screen.query_one("#smtp-security", Select).value == preset.security
            assert screen.query_one("#smtp-username", Input).placeholder == preset.username_hint
            guidance = screen.query_one("#guidance", Static)
            assert str(guidance.render()) == preset.guidance
            assert guidance.border_title == f"Guidance: {preset.label}"


async def test_editing_a_filled_field_switches_to_custom_only_when_it_no_longer_matches(
    config_path: Path,
) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        screen.choose_preset("gmail")
        await pilot.pause()
        await type_in(pilot, "#smtp-port", "465")  # Gmail also takes 465 with TLS
        assert screen.preset_key == "gmail"
        assert screen.query_one("#smtp-security", Select).value == Security.TLS
        await type_in(pilot, "#smtp-host", "smtp.gmail.com.")
        assert screen.preset_key == "gmail"
        await type_in(pilot, "#smtp-host", "mail.acme.example")
        assert screen.preset_key == "custom"
        assert "Any SMTP server" in str(screen.query_one("#guidance", Static).render())
        # the values of another preset bring its label back
        await type_in(pilot, "#smtp-host", "smtp.fastmail.com")
        assert screen.preset_key == "fastmail"


async def test_password_is_masked_toggles_and_refuses_copy(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        field = screen.query_one("#password", PasswordInput)
        assert field.password is True and field.select_on_focus is False
        await type_in(pilot, "#password", "s3cret", keys=True)
        assert field.value == "s3cret"
        assert "s3cret" not in str(field.render_line(0).text)
        await pilot.press("ctrl+a", "shift+end")  # select everything
        assert field.selected_text == "s3cret"
        copied: list[str] = []
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign,assignment]
        await pilot.press("ctrl+c", "ctrl+x")
        await pilot.pause()
        assert copied == [] and field.value == "s3cret"
        await pilot.press("ctrl+r")
        assert field.password is False
        assert "s3cret" in str(field.render_line(0).text)
        await pilot.press("ctrl+r")
        assert field.password is True
        await pilot.click("#password-toggle")
        assert field.password is False
        assert str(screen.query_one("#password-toggle", Button).label) == "Hide"
        await pilot.press("ctrl+r")
        assert field.password is True
        # the password never reaches the settings
        assert "s3cret" not in repr(screen.form_data())


async def test_saved_settings_are_loaded(config_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "preset": "gmail",
            "copy_to": "archive@acme.example",
            "smtp": {
                "host": "smtp.gmail.com",
                "port": 465,
                "security": "tls",
                "username": "me@gmail.com",
            },
        }
    )
    write_settings(config_path, settings)
    app = app_for(config_path)
    async with app.run_test(size=SIZE):
        screen = screen_of(app)
        assert screen.preset_key == "gmail"
        assert screen.query_one("#smtp-port", Input).value == "465"
        assert shown(app, "#copy-to")
        assert screen.validate() == settings
        assert screen.query_one("#load-error", Notice).text == ""


async def test_a_world_readable_settings_file_is_made_private_and_the_form_says_so(
    config_path: Path,
) -> None:
    settings = Settings.model_validate(
        {"smtp": {"host": "smtp.example.com", "username": "me@example.com"}}
    )
    write_settings(config_path, settings)
    config_path.chmod(0o644)  # as an older version or an editor left it
    app = app_for(config_path)
    async with app.run_test(size=SIZE):
        notice = screen_of(app).query_one("#load-error", Notice)
        assert "other users could read this file" in notice.text
        assert "now private (0600)" in notice.text
        assert config_path.stat().st_mode & 0o777 == 0o600
        assert screen_of(app).validate() == settings


async def test_a_corrupt_settings_file_is_reported_and_not_overwritten(config_path: Path) -> None:
    config_path.parent.mkdir(parents=True)
    corrupt = 'protocol = "smtp"\n[smtp]\nhost = "smtp.example.com"\nprot = 587\n'
    config_path.write_text(corrupt)
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = screen_of(app)
        notice = screen.query_one("#load-error", Notice)
        assert "could not be read" in notice.text
        assert str(config_path) in notice.text and "prot" in notice.text
        # fill in valid values and try to save: asked first, Back keeps the file
        await type_in(pilot, "#smtp-host", "mail.acme.example")
        await type_in(pilot, "#smtp-username", "me@acme.example")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Replace the unreadable" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("enter")  # the focused button is Back
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        assert config_path.read_text() == corrupt
        # asked again; this time "Replace it", then "Save anyway" (never tested)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#choice-replace")
        await pilot.pause()
        assert "never tested" in str(app.screen.query_one(".dialog-message").render())
        await pilot.click("#choice-save")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "mail.acme.example" in config_path.read_text()
        assert config_path.with_name("settings.toml.bak").read_text() == corrupt
        assert notice.text == ""


async def test_palette_offers_test_save_password_and_presets(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Test email settings", "Save settings", "Show/Hide password"):
            assert title in titles
        assert {f"Preset: {preset.label}" for preset in PRESETS.values()} <= set(titles)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Preset: Gmail")
        command.callback()
        assert screen_of(app).preset_key == "gmail"


async def test_side_pane_beside_the_form_when_wide_below_when_narrow(config_path: Path) -> None:
    for size, beside in (((120, 40), True), ((80, 24), False)):
        app = app_for(config_path)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            screen = screen_of(app)
            form = screen.query_one("#form-pane").region
            side = screen.query_one("#side-pane").region
            assert (side.x >= form.right) is beside, size
            assert screen.has_class("-wide" if beside else "-narrow")


async def test_ctrl_q_quits(config_path: Path) -> None:
    app = app_for(config_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_oauth2_settings_are_kept_and_the_password_is_marked_unused(
    config_path: Path,
) -> None:
    settings = Settings.model_validate(
        {
            "preset": "office365",
            "smtp": {
                "host": "smtp.office365.com",
                "username": "billing@acme.example",
                "auth": "oauth2",
            },
            "oauth": {
                "provider": "microsoft",
                "tenant": "acme.example",
                "client_id": "00000000-0000-0000-0000-000000000001",
            },
        }
    )
    write_settings(config_path, settings)
    app = app_for(config_path)
    async with app.run_test(size=SIZE):
        screen = screen_of(app)
        label = str(screen.query_one("#password-label", Static).render())
        assert "not used: OAuth2" in label
        assert screen.validate() == settings  # the [oauth] section the form lacks is kept
