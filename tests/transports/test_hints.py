"""The hints table: every class has an entry with the right words; presets reuse PRESETS."""

from __future__ import annotations

import pytest

from transports.errors import FailureClass, SendFailure
from transports.events import Step
from transports.hints import ALWAYS_LAST, HINTS, PRESET_HINTS, hints_for, with_hints
from transports.presets import PRESETS
from transports.settings import Settings

WORDS: dict[FailureClass, str] = {
    FailureClass.DNS: "spelling",
    FailureClass.REFUSED: "port 25",
    FailureClass.UNREACHABLE: "route",
    FailureClass.CONNECT_TIMEOUT: "firewall",
    FailureClass.GREETING_TIMEOUT: "465 expects TLS",
    FailureClass.TLS_WRONG_VERSION: "587",
    FailureClass.TLS_EXPECTED: "465 expects TLS",
    FailureClass.TLS_HANDSHAKE: "465",
    FailureClass.TLS_OUTDATED: "outdated",
    FailureClass.CERT_SELF_SIGNED: "Trusted certificate file",
    FailureClass.CERT_UNTRUSTED: "certificate authority",
    FailureClass.CERT_HOSTNAME: "host name",
    FailureClass.CERT_EXPIRED: "expired",
    FailureClass.CERT_INVALID: "clock",
    FailureClass.CA_FILE: "BEGIN CERTIFICATE",
    FailureClass.STARTTLS_NOT_OFFERED: "password in clear text",
    FailureClass.STARTTLS_REFUSED: "454",
    FailureClass.ENCRYPTION_REQUIRED: "starttls",
    FailureClass.GREETING_REJECTED: "block list",
    FailureClass.AUTH_NOT_OFFERED: "after STARTTLS",
    FailureClass.AUTH_NO_COMMON_MECHANISM: "XOAUTH2",
    FailureClass.AUTH_FAILED: "username or password",
    FailureClass.AUTH_REQUIRED: "530",
    FailureClass.APP_PASSWORD_REQUIRED: "app password",
    FailureClass.WEB_LOGIN_REQUIRED: "web browser",
    FailureClass.SMTP_AUTH_DISABLED: "Authenticated SMTP",
    FailureClass.BASIC_AUTH_DISABLED: "OAuth2",
    FailureClass.SENDER_REJECTED: "550/553",
    FailureClass.SEND_AS_DENIED: "Send As",
    FailureClass.RECIPIENT_REJECTED: "typos",
    FailureClass.MESSAGE_TOO_BIG: "SIZE",
    FailureClass.MESSAGE_REJECTED: "spam",
    FailureClass.SMTPUTF8_NOT_OFFERED: "SMTPUTF8",
    FailureClass.TEMPORARY: "421",
    FailureClass.DISCONNECTED: "closed the connection",
    FailureClass.TIMEOUT: "timeout",
    FailureClass.PROTOCOL: "mail server",
    FailureClass.PASSWORD_MISSING: "SMTPDESK_PASSWORD",
    FailureClass.HTTP_UNAUTHORIZED: "401",
    FailureClass.HTTP_NOT_FOUND: "404",
    FailureClass.HTTP_TOO_LARGE: "413",
    FailureClass.HTTP_RATE_LIMITED: "Retry-After",
    FailureClass.HTTP_SERVER_ERROR: "5xx",
    FailureClass.HTTP_CLIENT_ERROR: "4xx",
    FailureClass.HTTP_REDIRECT: "redirect",
    FailureClass.HTTP_BAD_RESPONSE: "contract",
    FailureClass.OAUTH_SIGN_IN: "smtpdesk oauth login",
    FailureClass.CANCELLED: "cancelled",
    FailureClass.UNEXPECTED: "report",
}


def test_every_class_has_its_words_listed_here() -> None:
    assert set(WORDS) == set(FailureClass)


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_every_class_has_a_hint_with_the_right_words(failure_class: FailureClass) -> None:
    hints = HINTS[failure_class]
    assert hints and all(hint.strip() for hint in hints)
    assert WORDS[failure_class].lower() in " ".join(hints).lower()


@pytest.mark.parametrize(
    "failure_class", [c for c in FailureClass if c is not FailureClass.CANCELLED]
)
def test_the_other_client_hint_is_always_last(failure_class: FailureClass) -> None:
    hints = hints_for(failure_class, "custom")
    assert hints[-1] == ALWAYS_LAST
    assert "Thunderbird" in hints[-1]
    assert len(hints) == len(set(hints))


def test_cancelled_has_no_troubleshooting_tail() -> None:
    assert ALWAYS_LAST not in hints_for(FailureClass.CANCELLED, "custom")


def test_do_not_verify_is_only_for_ones_own_server() -> None:
    text = " ".join(HINTS[FailureClass.CERT_SELF_SIGNED])
    assert text.index("Trusted certificate file") < text.index("Do not verify")
    assert "Only if this is your own server" in text
    assert "Never use it for Gmail, Yahoo or Office 365" in text


@pytest.mark.parametrize("preset", ["gmail", "yahoo"])
@pytest.mark.parametrize(
    "failure_class", [FailureClass.AUTH_FAILED, FailureClass.APP_PASSWORD_REQUIRED]
)
def test_app_password_presets_reuse_their_guidance(
    preset: str, failure_class: FailureClass
) -> None:
    hints = hints_for(failure_class, preset)
    assert hints[0] == PRESETS[preset].guidance
    assert "app password" in hints[0].lower()


@pytest.mark.parametrize(
    "failure_class",
    [FailureClass.AUTH_FAILED, FailureClass.SMTP_AUTH_DISABLED, FailureClass.BASIC_AUTH_DISABLED],
)
def test_office365_states_the_smtp_auth_and_oauth_facts(failure_class: FailureClass) -> None:
    text = "\n".join(hints_for(failure_class, "office365"))
    for words in ("Authenticated SMTP", "December 2026", "second half of 2027", "XOAUTH2"):
        assert words in text


def test_outlook_personal_is_oauth_only() -> None:
    text = "\n".join(hints_for(FailureClass.AUTH_FAILED, "outlook"))
    assert "Only OAuth2" in text


def test_preset_hints_come_first_and_only_for_known_presets() -> None:
    for (failure_class, preset), extra in PRESET_HINTS.items():
        assert preset in PRESETS
        assert hints_for(failure_class, preset)[: len(extra)] == extra


def test_with_hints_fills_a_copy_for_the_settings_preset() -> None:
    settings = Settings.model_validate(
        {"preset": "gmail", "smtp": {"host": "smtp.gmail.com", "username": "me@gmail.com"}}
    )
    failure = SendFailure(FailureClass.AUTH_FAILED, Step.AUTH, "Authentication failed")
    filled = with_hints(failure, settings)
    assert failure.hints == ()
    assert filled.hints[0] == PRESETS["gmail"].guidance
    assert filled.to_dict()["hints"] == list(filled.hints)
