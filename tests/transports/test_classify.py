"""Classification of library exceptions and server replies, without a network."""

from __future__ import annotations

import socket
import ssl

import aiosmtplib
import pytest

from tests.transports.helpers import PASSWORD, USER
from transports.classify import Redactor, classify_exception, classify_reply
from transports.errors import FailureClass
from transports.events import Step


def wrapped(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code = code
    error.verify_message = message
    return error


def test_gaierror_through_the_wrapper_is_dns() -> None:
    cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    exc = wrapped(aiosmtplib.SMTPConnectError("Error connecting to x"), cause)
    failure = classify_exception(exc, Step.CONNECT)
    assert failure.failure_class is FailureClass.DNS and failure.step is Step.RESOLVE
    assert not failure.retryable


def test_temporary_dns_failure_is_retryable() -> None:
    exc = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    failure = classify_exception(exc, Step.RESOLVE)
    assert failure.failure_class is FailureClass.DNS and failure.retryable


def test_refused_through_the_wrapper() -> None:
    exc = wrapped(aiosmtplib.SMTPConnectError("Error connecting"), ConnectionRefusedError(111, "x"))
    assert classify_exception(exc, Step.CONNECT).failure_class is FailureClass.REFUSED


@pytest.mark.parametrize(
    ("port", "implicit", "cls"),
    [
        (465, False, FailureClass.TLS_EXPECTED),
        (587, False, FailureClass.GREETING_TIMEOUT),
        (465, True, FailureClass.GREETING_TIMEOUT),
    ],
)
def test_greeting_timeout_and_port_465(port: int, implicit: bool, cls: FailureClass) -> None:
    exc = aiosmtplib.SMTPConnectTimeoutError("Timed out waiting for server ready message")
    failure = classify_exception(exc, Step.GREETING, port=port, implicit_tls=implicit, timeout=2)
    assert failure.failure_class is cls and failure.step is Step.GREETING


def test_connect_timeout() -> None:
    exc = aiosmtplib.SMTPConnectTimeoutError("Timed out connecting to x on port 25")
    failure = classify_exception(exc, Step.CONNECT, timeout=3)
    assert failure.failure_class is FailureClass.CONNECT_TIMEOUT
    assert "3 s" in failure.detail


def test_step_timeout_keeps_the_step() -> None:
    failure = classify_exception(TimeoutError(), Step.RCPT, timeout=5)
    assert failure.failure_class is FailureClass.TIMEOUT and failure.step is Step.RCPT


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        (18, "self-signed certificate", FailureClass.CERT_SELF_SIGNED),
        (19, "self-signed certificate in certificate chain", FailureClass.CERT_SELF_SIGNED),
        (20, "unable to get local issuer certificate", FailureClass.CERT_UNTRUSTED),
        (62, "Hostname mismatch", FailureClass.CERT_HOSTNAME),
        (64, "IP address mismatch", FailureClass.CERT_HOSTNAME),
        (10, "certificate has expired", FailureClass.CERT_EXPIRED),
        (9, "certificate is not yet valid", FailureClass.CERT_INVALID),
    ],
)
def test_certificate_codes_wrapped_and_raw(code: int, message: str, cls: FailureClass) -> None:
    wrapped_failure = classify_exception(
        wrapped(aiosmtplib.SMTPConnectError("Error connecting"), cert_error(code, message)),
        Step.GREETING,
    )
    # STARTTLS certificate failures arrive raw (FACTS.md).
    raw_failure = classify_exception(cert_error(code, message), Step.STARTTLS)
    for failure in (wrapped_failure, raw_failure):
        assert failure.failure_class is cls
        assert failure.step is Step.TLS
        assert f"verify code {code}" in failure.detail


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        (
            "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
            FailureClass.TLS_WRONG_VERSION,
        ),
        ("[SSL: DH_KEY_TOO_SMALL] dh key too small (_ssl.c:1006)", FailureClass.TLS_OUTDATED),
        (
            "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol (_ssl.c:1006)",
            FailureClass.TLS_OUTDATED,
        ),
        ("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] handshake failure", FailureClass.TLS_HANDSHAKE),
    ],
)
def test_tls_errors(text: str, cls: FailureClass) -> None:
    exc = wrapped(aiosmtplib.SMTPConnectError("Error connecting"), ssl.SSLError(1, text))
    failure = classify_exception(exc, Step.GREETING)
    assert failure.failure_class is cls and failure.step is Step.TLS


def test_disconnect_is_retryable() -> None:
    failure = classify_exception(aiosmtplib.SMTPServerDisconnected("Unexpected EOF"), Step.DATA)
    assert failure.failure_class is FailureClass.DISCONNECTED
    assert failure.retryable and failure.step is Step.DATA


@pytest.mark.parametrize(
    ("code", "text", "step", "cls"),
    [
        (535, "5.7.8 Authentication credentials invalid", Step.AUTH, FailureClass.AUTH_FAILED),
        (530, "5.7.0 Authentication required", Step.MAIL, FailureClass.AUTH_REQUIRED),
        (
            534,
            "5.7.9 Application-specific password required",
            Step.AUTH,
            FailureClass.APP_PASSWORD_REQUIRED,
        ),
        (
            534,
            "5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in via "
            "your web browser and then try again.",
            Step.AUTH,
            FailureClass.WEB_LOGIN_REQUIRED,
        ),
        (
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
            "for the Tenant",
            Step.AUTH,
            FailureClass.SMTP_AUTH_DISABLED,
        ),
        (
            535,
            "5.7.139 Authentication unsuccessful, basic authentication is disabled.",
            Step.AUTH,
            FailureClass.BASIC_AUTH_DISABLED,
        ),
        (
            550,
            "5.7.30 Basic authentication is not supported for Client Submission.",
            Step.AUTH,
            FailureClass.BASIC_AUTH_DISABLED,
        ),
        (
            554,
            "5.2.252 SendAsDenied; a not allowed to send as b",
            Step.DATA,
            FailureClass.SEND_AS_DENIED,
        ),
        (
            553,
            "5.7.1 <b@x>: Sender address rejected: not owned by user a@x",
            Step.MAIL,
            FailureClass.SEND_AS_DENIED,
        ),
        (550, "5.1.0 Sender rejected", Step.MAIL, FailureClass.SENDER_REJECTED),
        (
            553,
            "5.1.8 Domain of sender address does not exist",
            Step.MAIL,
            FailureClass.SENDER_REJECTED,
        ),
        (550, "5.1.1 no such user", Step.RCPT, FailureClass.RECIPIENT_REJECTED),
        (552, "5.2.2 mailbox full", Step.RCPT, FailureClass.RECIPIENT_REJECTED),
        (552, "5.3.4 Message size exceeds fixed limit", Step.DATA, FailureClass.MESSAGE_TOO_BIG),
        (552, "5.2.3 Message exceeds maximum size", Step.MAIL, FailureClass.MESSAGE_TOO_BIG),
        (421, "4.3.2 Service not available", Step.GREETING, FailureClass.TEMPORARY),
        (451, "4.7.1 Greylisted", Step.RCPT, FailureClass.TEMPORARY),
        (454, "4.7.0 TLS not available", Step.STARTTLS, FailureClass.STARTTLS_REFUSED),
        (530, "Must issue a STARTTLS command first", Step.MAIL, FailureClass.ENCRYPTION_REQUIRED),
        (554, "5.7.1 client host blocked", Step.GREETING, FailureClass.GREETING_REJECTED),
        (554, "5.6.0 Message rejected as spam", Step.DATA, FailureClass.MESSAGE_REJECTED),
        (
            504,
            "5.5.4 Unrecognized authentication type",
            Step.AUTH,
            FailureClass.AUTH_NO_COMMON_MECHANISM,
        ),
        (-1, "Malformed SMTP response line: HTTP/1.1 400", Step.GREETING, FailureClass.PROTOCOL),
    ],
)
def test_reply_table(code: int, text: str, step: Step, cls: FailureClass) -> None:
    failure = classify_reply(code, text, step)
    assert failure.failure_class is cls
    assert failure.step is step
    assert failure.retryable is (400 <= code < 500)
    assert failure.detail.startswith(str(code))


def test_redactor_removes_every_form_of_the_secret() -> None:
    import base64

    redact = Redactor(PASSWORD, USER)
    plain_blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    text = f"echo {PASSWORD} {base64.b64encode(PASSWORD.encode()).decode()} {plain_blob}"
    cleaned = redact(text)
    assert PASSWORD not in cleaned
    assert plain_blob not in cleaned
    assert cleaned.count("<redacted>") == 3
    assert "forms" in repr(redact) and PASSWORD not in repr(redact)


def test_a_server_echoing_the_password_is_redacted_in_the_failure() -> None:
    exc = aiosmtplib.SMTPAuthenticationError(535, f"5.7.8 bad password {PASSWORD}")
    failure = classify_exception(exc, Step.AUTH, redact=Redactor(PASSWORD, USER))
    assert failure.failure_class is FailureClass.AUTH_FAILED
    for text in (str(failure), repr(failure), str(failure.to_dict())):
        assert PASSWORD not in text


def test_unknown_errors_are_unexpected_not_raised() -> None:
    failure = classify_exception(RuntimeError("boom"), Step.MAIL)
    assert failure.failure_class is FailureClass.UNEXPECTED
    assert "RuntimeError" in failure.title
