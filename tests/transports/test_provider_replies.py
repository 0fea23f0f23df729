"""Provider reply texts, answered by a scripted server, each with its own class and hint."""

from __future__ import annotations

import pytest

from tests.smtpservers import Script, ScriptedFactory
from tests.transports.helpers import PASSWORD, exchange, message
from transports.errors import FailureClass
from transports.events import Step
from transports.hints import with_hints

GMAIL_534 = (
    "534-5.7.9 Application-specific password required. Learn more at\n"
    "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor d2sm1234.0 - gsmtp"
)
GMAIL_535 = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials x1sm1234.0 - gsmtp"
)
O365_SMTP_AUTH_OFF = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[DB9PR01CA0001.eurprd01.prod.exchangelabs.com]"
)
O365_BASIC_OFF = (
    "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
    "[BN9PR03CA0001.namprd03.prod.outlook.com]"
)
O365_5730 = "550 5.7.30 Basic authentication is not supported for Client Submission."
SEND_AS_DENIED = (
    "554 5.2.252 SendAsDenied; me@example.test not allowed to send as boss@example.test; "
    "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"
)
YAHOO_535 = "535 5.7.0 (#AUTH005) Too many bad auth attempts."


@pytest.mark.parametrize(
    ("preset", "auth_reply", "cls", "words"),
    [
        ("gmail", GMAIL_534, FailureClass.APP_PASSWORD_REQUIRED, ["App passwords", "2-Step"]),
        ("gmail", GMAIL_535, FailureClass.AUTH_FAILED, ["app password", "16-character"]),
        ("yahoo", YAHOO_535, FailureClass.AUTH_FAILED, ["Generate app password", "Other app"]),
        (
            "office365",
            O365_SMTP_AUTH_OFF,
            FailureClass.SMTP_AUTH_DISABLED,
            ["Authenticated SMTP", "OAuth2"],
        ),
        (
            "office365",
            O365_BASIC_OFF,
            FailureClass.BASIC_AUTH_DISABLED,
            ["December 2026", "2027", "XOAUTH2", "App passwords do not help"],
        ),
        ("office365", O365_5730, FailureClass.BASIC_AUTH_DISABLED, ["OAuth2", "SMTP.Send"]),
        ("outlook", O365_BASIC_OFF, FailureClass.BASIC_AUTH_DISABLED, ["September 2024", "OAuth2"]),
    ],
)
async def test_provider_auth_replies(
    scripted_server: ScriptedFactory,
    preset: str,
    auth_reply: str,
    cls: FailureClass,
    words: list[str],
) -> None:
    server = await scripted_server(Script(replies={"AUTH": auth_reply}))
    settings = server.settings(preset=preset)
    run = await exchange(settings)
    assert run.failure is not None, run.transcript()
    assert run.failure.failure_class is cls
    assert run.failure.step is Step.AUTH
    code = int(auth_reply[:3])
    assert run.failure.reply_code == code
    # The whole multi-line reply is kept, and shown line by line in the transcript.
    assert run.failure.reply_text.count("\n") == auth_reply.count("\n")
    assert auth_reply.split("\n")[-1] in run.texts()
    hints = "\n".join(with_hints(run.failure, settings).hints)
    for word in words:
        assert word.lower() in hints.lower(), (word, hints)


async def test_send_as_denied_after_data(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(Script(replies={".": SEND_AS_DENIED}))
    settings = server.settings(preset="office365")
    run = await exchange(settings, PASSWORD, [message(settings)])
    assert run.failure is not None
    assert run.failure.failure_class is FailureClass.SEND_AS_DENIED
    assert run.failure.step is Step.DATA
    hints = with_hints(run.failure, settings).hints
    assert "Send As" in hints[0]


async def test_temporary_4xx_on_rcpt_is_retryable(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        Script(replies={"RCPT": "451 4.7.1 Greylisted, please try again in 300 seconds"})
    )
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings)])
    assert run.failure is not None
    assert run.failure.failure_class is FailureClass.TEMPORARY
    assert run.failure.retryable and run.failure.reply_code == 451
    assert "RSET" in server.verbs()


async def test_greeting_554_is_a_rejection(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        Script(greeting="554 5.7.1 Service unavailable; client host blocked using zen.spamhaus")
    )
    settings = server.settings()
    run = await exchange(settings)
    assert run.failure is not None
    assert run.failure.failure_class is FailureClass.GREETING_REJECTED
    assert run.failure.step is Step.GREETING
    assert not run.failure.retryable


async def test_smtputf8_needed_but_not_offered(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(Script())
    settings = server.settings()
    outgoing = message(settings, to="zoë@example.test")
    assert outgoing.smtputf8
    run = await exchange(settings, PASSWORD, [outgoing])
    assert run.failure is not None
    assert run.failure.failure_class is FailureClass.SMTPUTF8_NOT_OFFERED
    assert "MAIL" not in server.verbs()


async def test_smtputf8_used_when_offered(scripted_server: ScriptedFactory) -> None:
    server = await scripted_server(
        Script(ehlo="250-scripted\n250-AUTH PLAIN\n250-8BITMIME\n250 SMTPUTF8")
    )
    settings = server.settings()
    run = await exchange(settings, PASSWORD, [message(settings, to="zoë@example.test")])
    assert run.failure is None, run.transcript()
    mail = next(line for line in server.lines if line.startswith(b"MAIL"))
    rcpt = next(line for line in server.lines if line.startswith(b"RCPT"))
    assert b"SMTPUTF8" in mail
    assert "zoë@example.test".encode() in rcpt
