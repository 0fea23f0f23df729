"""Provider presets (DESIGN.md section 2): values, guidance facts, and preset matching."""

from __future__ import annotations

import pytest

from transports.presets import PRESETS, preset_for
from transports.settings import STRICT_TLS_PRESETS, Security, Settings, check_host
from tui.sandbox import DEFAULT_SUBMISSION_PORT

EXPECTED = {
    # key: (host, port, security, other port/security pairs)
    "gmail": ("smtp.gmail.com", 587, Security.STARTTLS, {(465, Security.TLS)}),
    "yahoo": ("smtp.mail.yahoo.com", 587, Security.STARTTLS, {(465, Security.TLS)}),
    "office365": ("smtp.office365.com", 587, Security.STARTTLS, set()),
    "outlook": ("smtp-mail.outlook.com", 587, Security.STARTTLS, set()),
    "icloud": ("smtp.mail.me.com", 587, Security.STARTTLS, set()),
    "zoho": ("smtp.zoho.com", 465, Security.TLS, {(587, Security.STARTTLS)}),
    "fastmail": ("smtp.fastmail.com", 465, Security.TLS, {(587, Security.STARTTLS)}),
    "gmx": ("mail.gmx.com", 465, Security.TLS, {(587, Security.STARTTLS)}),
    "aol": ("smtp.aol.com", 465, Security.TLS, {(587, Security.STARTTLS)}),
    "sandbox": ("127.0.0.1", 8587, Security.STARTTLS, set()),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_every_design_preset_has_host_port_and_security(key: str) -> None:
    preset = PRESETS[key]
    host, port, security, others = EXPECTED[key]
    assert (preset.key, preset.host, preset.port, preset.security) == (key, host, port, security)
    assert set(preset.other_ports) == others
    assert preset.label and preset.username_hint and preset.guidance


def test_custom_preset_exists_and_is_last() -> None:
    assert list(PRESETS)[-1] == "custom"
    assert PRESETS["custom"].host == ""
    assert set(PRESETS) == {*EXPECTED, "custom"}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_preset_makes_valid_settings(key: str) -> None:
    preset = PRESETS[key]
    assert check_host(preset.host) == preset.host
    settings = Settings.model_validate(
        {
            "preset": key,
            "smtp": {
                "host": preset.host,
                "port": preset.port,
                "security": preset.security.value,
                "username": "someone@example.test",
            },
        }
    )
    assert settings.preset == key


def test_strict_tls_flag_matches_the_settings_rule() -> None:
    """Presets that refuse "do not verify" are exactly those the settings model refuses."""
    strict = {key for key, preset in PRESETS.items() if preset.strict_tls}
    assert strict == set(STRICT_TLS_PRESETS)
    assert {"gmail", "yahoo", "office365"} <= strict


def test_sandbox_preset_port_is_the_sandbox_submission_port() -> None:
    assert PRESETS["sandbox"].port == DEFAULT_SUBMISSION_PORT
    assert "demo@smtpdesk.test" in PRESETS["sandbox"].guidance


# -- guidance facts ------------------------------------------------------------


def test_office365_guidance_states_the_microsoft_facts() -> None:
    guidance = " ".join(PRESETS["office365"].guidance.split())
    for fact in (
        "December 2026",
        "off by default for existing tenants",
        "unavailable for new tenants",
        "second half of 2027",
        "OAuth2",
        "XOAUTH2",
        "SMTP.Send",
        "535 5.7.139",
        "550 5.7.30",
        "SmtpClientAuthentication is disabled",
        "SendAsDenied",
        "App passwords do not help",
    ):
        assert fact.lower() in guidance.lower(), fact


def test_outlook_personal_guidance_says_oauth_only_since_september_2024() -> None:
    guidance = PRESETS["outlook"].guidance
    assert "September 2024" in guidance
    assert "OAuth2" in guidance


def test_gmail_guidance_gives_the_app_password_steps() -> None:
    guidance = PRESETS["gmail"].guidance
    for fact in ("2-Step Verification", "App passwords", "534-5.7.9", "535-5.7.8", "465"):
        assert fact in guidance, fact
    assert PRESETS["gmail"].app_password


def test_yahoo_guidance_gives_the_app_password_steps() -> None:
    guidance = PRESETS["yahoo"].guidance
    for fact in ("https://login.yahoo.com/account/security", "Generate app password", "Other app"):
        assert fact in guidance, fact
    assert PRESETS["yahoo"].app_password


@pytest.mark.parametrize(
    ("key", "fact"),
    [
        ("icloud", "App-Specific Passwords"),
        ("fastmail", "app password"),
        ("aol", "app password"),
        ("zoho", "smtp.zoho.eu"),
        ("zoho", "smtp.zoho.com.au"),
        ("gmx", "mail.gmx.net"),
    ],
)
def test_other_guidance_facts(key: str, fact: str) -> None:
    assert fact in PRESETS[key].guidance


# -- preset_for: matching and the silent switch to Custom ------------------------


@pytest.mark.parametrize(
    ("host", "port", "security", "expected"),
    [
        ("smtp.gmail.com", 587, Security.STARTTLS, "gmail"),
        ("smtp.gmail.com", 465, Security.TLS, "gmail"),
        ("SMTP.Gmail.COM.", 587, Security.STARTTLS, "gmail"),
        ("smtp.office365.com", 587, Security.STARTTLS, "office365"),
        ("smtp.zoho.eu", 465, Security.TLS, "zoho"),
        ("smtp.zoho.jp", 587, Security.STARTTLS, "zoho"),
        ("mail.gmx.net", 587, Security.STARTTLS, "gmx"),
        ("127.0.0.1", 8587, Security.STARTTLS, "sandbox"),
        ("smtp.gmail.com", 25, Security.STARTTLS, "custom"),
        ("smtp.gmail.com", 587, Security.TLS, "custom"),
        ("smtp.gmail.com", 587, Security.NONE, "custom"),
        ("smtp.example.com", 587, Security.STARTTLS, "custom"),
        ("", 587, Security.STARTTLS, "custom"),
    ],
)
def test_preset_for_matches_values(host: str, port: int, security: Security, expected: str) -> None:
    assert preset_for(host, port, security) == expected


def test_preset_for_keeps_the_current_preset_while_it_still_matches() -> None:
    assert preset_for("smtp.gmail.com", 465, Security.TLS, current="gmail") == "gmail"
    assert preset_for("smtp.gmail.com", 2525, Security.TLS, current="gmail") == "custom"


def test_preset_for_switches_to_the_preset_the_values_now_match() -> None:
    assert preset_for("smtp.mail.yahoo.com", 587, Security.STARTTLS, current="gmail") == "yahoo"


def test_custom_never_matches_by_itself() -> None:
    assert not PRESETS["custom"].matches("", 587, Security.STARTTLS)
    assert preset_for("", 587, Security.STARTTLS, current="custom") == "custom"


def test_unknown_current_preset_is_ignored() -> None:
    assert preset_for("smtp.gmail.com", 587, Security.STARTTLS, current="nope") == "gmail"


def test_office365_guidance_gives_the_oauth2_steps() -> None:
    guidance = " ".join(PRESETS["office365"].guidance.split())
    steps = [
        "App registrations → New registration",
        "'Allow public client flows' = Yes",
        "APIs my organization uses",
        "'Office 365 Exchange Online' → Delegated permissions → SMTP.Send",
        "admin consent",
        "Application (client) ID",
        "Manage email apps → Authenticated SMTP",
        "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false",
        "smtpdesk oauth login",
    ]
    positions = [guidance.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)  # in the order they are done


def test_gmail_guidance_says_gmail_stays_on_app_passwords() -> None:
    guidance = " ".join(PRESETS["gmail"].guidance.split())
    assert "device sign-in" in guidance and "does not grant mail scopes" in guidance
    assert "Gmail stays on app passwords" in guidance
