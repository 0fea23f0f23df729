"""Failure classification: library exceptions and SMTP replies → ``SendFailure``.

aiosmtplib wraps the real cause of a connection failure (``socket.gaierror``,
``ConnectionRefusedError``, ``ssl.SSLCertVerificationError``) in its own
``SMTPConnectError``; a certificate failure during STARTTLS arrives raw. So
``classify_exception`` walks ``__cause__`` / ``__context__`` and classifies by
the most telling link of the chain. ``classify_reply`` turns a server reply
(code and text) at a step into a failure class, recognising the provider texts
that deserve their own hint (Gmail 534 5.7.9, Office 365 535 5.7.139 and
550 5.7.30, SendAsDenied, …).

Every text that goes into a failure passes through a ``Redactor`` first, so a
server that echoes a credential back cannot smuggle it into a message.
"""

from __future__ import annotations

import base64
import errno
import re
import socket
import ssl
from collections.abc import Iterator

import aiosmtplib

from transports.errors import FailureClass, SendFailure
from transports.events import Step

REDACTED = "<redacted>"


class Redactor:
    """Replaces every known form of a secret in a text with ``<redacted>``.

    The forms: the secret itself, its base64, the AUTH PLAIN blob and the
    base64 of the username + secret combinations a SASL mechanism may send.
    """

    def __init__(self, secret: str | None, username: str = "") -> None:
        self._username = username
        self._forms: list[str] = []
        self.add(secret)

    def add(self, secret: str | None) -> None:
        """Redact one more secret too (a new OAuth2 access token after a refresh)."""
        if not secret:
            return
        forms = set(self._forms)
        raw = secret.encode("utf-8")
        user = self._username.encode("utf-8")
        forms.add(secret)
        for blob in (
            raw,
            b"\0" + user + b"\0" + raw,
            user + b"\0" + user + b"\0" + raw,
            f"user={self._username}\1auth=Bearer {secret}\1\1".encode(),
        ):
            forms.add(base64.b64encode(blob).decode("ascii"))
            forms.add(base64.b64encode(blob).decode("ascii").rstrip("="))
        # Longest first, so a blob is replaced whole before its parts.
        self._forms = sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"<Redactor forms={len(self._forms)}>"


def _no_redaction(text: str) -> str:
    return text


def server_text(text: str) -> str:
    """Server text made safe for any UTF-8 sink: undecodable bytes become U+FFFD.

    aiosmtplib decodes replies with ``surrogateescape``, so a byte that is not
    UTF-8 (``\\xff``) arrives as a lone surrogate (``\\udcff``), which no UTF-8
    file, terminal, log or database accepts: writing it raises
    ``UnicodeEncodeError`` far from here. The original bytes are recovered
    and decoded again with replacement characters, visibly.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "replace")
        return raw.decode("utf-8", "replace")
    return text


def _only_escapes(text: str) -> bool:
    """True when every surrogate in ``text`` is one ``surrogateescape`` made."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts, outermost first, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# --- replies -------------------------------------------------------------------------

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_code(text: str) -> str:
    """The first RFC 3463 enhanced status code in a reply (``5.7.139``), or ``""``."""
    match = _ENHANCED.search(text)
    return match.group(0) if match else ""


def _reply_class(code: int, text: str, step: Step) -> FailureClass:
    # Only 4xx and 5xx refuse. A code outside 2xx-5xx is not SMTP, and a 2xx
    # or 3xx that reaches here came where another one belonged (250 to AUTH,
    # 354 to MAIL): an out-of-step server, not a wrong password or a refusal.
    if not 400 <= code <= 599:
        return FailureClass.PROTOCOL
    lower = text.lower()
    enhanced = enhanced_code(text)
    # Provider texts first: they are the most precise.
    if "smtpclientauthentication is disabled" in lower:
        return FailureClass.SMTP_AUTH_DISABLED
    if enhanced == "5.7.30" or (
        enhanced == "5.7.139" and "basic authentication is disabled" in lower
    ):
        return FailureClass.BASIC_AUTH_DISABLED
    if "basic authentication is not supported" in lower:
        return FailureClass.BASIC_AUTH_DISABLED
    if enhanced == "5.7.14" or "log in via your web browser" in lower:
        return FailureClass.WEB_LOGIN_REQUIRED
    if (code == 534 and enhanced == "5.7.9") or "application-specific password" in lower:
        return FailureClass.APP_PASSWORD_REQUIRED
    if enhanced == "5.2.252" or "sendasdenied" in lower or "not owned by user" in lower:
        return FailureClass.SEND_AS_DENIED
    if enhanced in {"5.2.3", "5.3.4"} or (
        code == 552 and enhanced != "5.2.2" and step is not Step.RCPT
    ):
        return FailureClass.MESSAGE_TOO_BIG
    if step is Step.STARTTLS:
        return FailureClass.STARTTLS_REFUSED
    if code == 538 or "must issue a starttls" in lower:
        return FailureClass.ENCRYPTION_REQUIRED
    if code == 530 or "authentication required" in lower:
        return FailureClass.AUTH_REQUIRED
    if 400 <= code < 500:
        return FailureClass.TEMPORARY
    if step is Step.GREETING:
        return FailureClass.GREETING_REJECTED
    if step is Step.AUTH:
        if code == 504:
            return FailureClass.AUTH_NO_COMMON_MECHANISM
        return FailureClass.AUTH_FAILED
    if code == 535:
        return FailureClass.AUTH_FAILED
    if step is Step.MAIL:
        return FailureClass.SENDER_REJECTED
    if step is Step.RCPT:
        return FailureClass.RECIPIENT_REJECTED
    if step is Step.DATA:
        return FailureClass.MESSAGE_REJECTED
    return FailureClass.PROTOCOL


_REPLY_TITLES: dict[FailureClass, str] = {
    FailureClass.SMTP_AUTH_DISABLED: "SMTP AUTH is disabled for this mailbox or tenant",
    FailureClass.BASIC_AUTH_DISABLED: "Basic authentication is disabled: OAuth2 is needed",
    FailureClass.APP_PASSWORD_REQUIRED: "The server wants an app password",
    FailureClass.SEND_AS_DENIED: "This login may not send as the From address",
    FailureClass.MESSAGE_TOO_BIG: "The message is too big for the server",
    FailureClass.STARTTLS_REFUSED: "The server refused STARTTLS",
    FailureClass.ENCRYPTION_REQUIRED: "The server requires encryption first",
    FailureClass.AUTH_REQUIRED: "The server requires authentication",
    FailureClass.TEMPORARY: "Temporary failure: the server asks to try again later",
    FailureClass.GREETING_REJECTED: "The server refused the connection in its greeting",
    FailureClass.AUTH_NO_COMMON_MECHANISM: "No authentication mechanism in common",
    FailureClass.AUTH_FAILED: "Authentication failed: username or password not accepted",
    FailureClass.SENDER_REJECTED: "The sender address was rejected",
    FailureClass.RECIPIENT_REJECTED: "The recipient was rejected",
    FailureClass.MESSAGE_REJECTED: "The server rejected the message",
    FailureClass.PROTOCOL: "Unexpected reply from the server",
}


def classify_reply(
    code: int, text: str, step: Step, *, redact: Redactor | None = None
) -> SendFailure:
    """The failure for a server reply ``code text`` received at ``step``."""
    clean = (redact or _no_redaction)(server_text(text).strip())
    failure_class = _reply_class(code, clean, step)
    one_line = " ".join(clean.split())
    return SendFailure(
        failure_class=failure_class,
        step=step,
        title=_REPLY_TITLES.get(failure_class, "The server refused"),
        detail=f"{code} {one_line}",
        reply_code=code,
        reply_text=clean,
        retryable=400 <= code < 500,
    )


# --- exceptions ----------------------------------------------------------------------

_CERT_CODES: dict[int, tuple[FailureClass, str]] = {
    18: (FailureClass.CERT_SELF_SIGNED, "The server's certificate is self-signed"),
    19: (
        FailureClass.CERT_SELF_SIGNED,
        "The server's certificate chain ends in a self-signed certificate that is not trusted",
    ),
    20: (FailureClass.CERT_UNTRUSTED, "The server's certificate is issued by an untrusted CA"),
    21: (FailureClass.CERT_UNTRUSTED, "The server's certificate cannot be verified"),
    2: (FailureClass.CERT_UNTRUSTED, "The server's certificate issuer is unknown"),
    62: (FailureClass.CERT_HOSTNAME, "The server's certificate is for another host name"),
    64: (FailureClass.CERT_HOSTNAME, "The server's certificate is not for this IP address"),
    10: (FailureClass.CERT_EXPIRED, "The server's certificate has expired"),
    9: (FailureClass.CERT_INVALID, "The server's certificate is not valid yet"),
}

_OUTDATED = (
    "dh key too small",
    "dh_key_too_small",
    "unsupported protocol",
    "unsupported_protocol",
    "protocol_version",
    "protocol version",
    "no_protocols_available",
    "no protocols available",
    "legacy sigalg",
    "ee key too small",
    "ca md too weak",
)


def _tls_failure(exc: ssl.SSLError, redact: Redactor | None) -> SendFailure:
    text = (redact or _no_redaction)(str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        failure_class, title = _CERT_CODES.get(
            code, (FailureClass.CERT_INVALID, "The server's certificate is not valid")
        )
        detail = f"{exc.verify_message} (verify code {code})" if exc.verify_message else text
        return SendFailure(failure_class, Step.TLS, title, detail=redact_or(redact, detail))
    lower = text.lower()
    reason = (getattr(exc, "reason", None) or "").lower()
    if "wrong_version_number" in reason or "wrong version number" in lower:
        return SendFailure(
            FailureClass.TLS_WRONG_VERSION,
            Step.TLS,
            "The server does not speak TLS at once on this port (implicit TLS mismatch)",
            detail=text,
        )
    if any(word in lower or word in reason for word in _OUTDATED):
        return SendFailure(
            FailureClass.TLS_OUTDATED,
            Step.TLS,
            "The server's TLS is outdated or too weak to be accepted",
            detail=text,
        )
    return SendFailure(
        FailureClass.TLS_HANDSHAKE, Step.TLS, "The TLS handshake failed", detail=text
    )


def redact_or(redact: Redactor | None, text: str) -> str:
    """``text`` (made UTF-8 safe) passed through the redactor when there is one."""
    text = server_text(text)
    return redact(text) if redact else text


def classify_exception(
    exc: BaseException,
    step: Step,
    *,
    port: int | None = None,
    implicit_tls: bool = False,
    timeout: float | None = None,
    redact: Redactor | None = None,
) -> SendFailure:
    """The failure for an exception raised at ``step``.

    Args:
        exc: what was raised (its cause chain is walked).
        step: the step that was running.
        port: the server port, to tell a plain client meeting port 465.
        implicit_tls: True when the security mode is implicit TLS.
        timeout: the per-step timeout, for the text of timeout failures.
        redact: removes credentials from every text.
    """
    if isinstance(exc, SendFailure):
        return exc
    links = list(chain(exc))
    outer_text = redact_or(redact, server_text(str(exc)) or type(exc).__name__)
    within = f" within {timeout:g} s" if timeout else ""

    for link in links:
        if isinstance(link, socket.gaierror):
            temporary = link.errno in {socket.EAI_AGAIN}
            return SendFailure(
                FailureClass.DNS,
                Step.RESOLVE,
                "The host name could not be resolved"
                + (" (temporary failure: offline or DNS down?)" if temporary else ""),
                detail=redact_or(redact, str(link)),
                retryable=temporary,
            )
    for link in links:
        if isinstance(link, ssl.SSLError):
            return _tls_failure(link, redact)

    for link in links:
        if isinstance(link, aiosmtplib.SMTPResponseException):
            return classify_reply(link.code, link.message, step, redact=redact)

    for link in links:
        if isinstance(link, ConnectionRefusedError):
            return SendFailure(
                FailureClass.REFUSED,
                Step.CONNECT,
                "Connection refused: nothing listens on this port, or a firewall rejects it",
                detail=redact_or(redact, str(link)),
                retryable=True,
            )
        if isinstance(link, OSError) and link.errno in {
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        }:
            return SendFailure(
                FailureClass.UNREACHABLE,
                Step.CONNECT,
                "The server is unreachable from this machine (no route)",
                detail=redact_or(redact, str(link)),
                retryable=True,
            )

    greeting_timeout = isinstance(exc, aiosmtplib.SMTPConnectTimeoutError) and (
        "server ready" in str(exc)
    )
    is_timeout = any(isinstance(link, TimeoutError | aiosmtplib.SMTPTimeoutError) for link in links)
    if greeting_timeout or (is_timeout and step is Step.GREETING):
        if not implicit_tls and port == 465:
            return SendFailure(
                FailureClass.TLS_EXPECTED,
                Step.GREETING,
                "No greeting: port 465 expects implicit TLS from the first byte",
                detail=f"the server said nothing{within} after the connection was made",
                retryable=False,
            )
        return SendFailure(
            FailureClass.GREETING_TIMEOUT,
            Step.GREETING,
            "Connected, but the server never sent its greeting"
            + (" (or the TLS handshake never finished)" if implicit_tls else ""),
            detail=f"no greeting{within}: {outer_text}",
            retryable=True,
        )
    if is_timeout:
        if step is Step.CONNECT:
            return SendFailure(
                FailureClass.CONNECT_TIMEOUT,
                Step.CONNECT,
                "Connecting timed out: no answer from the server",
                detail=f"no TCP connection{within}",
                retryable=True,
            )
        return SendFailure(
            FailureClass.TIMEOUT,
            step,
            f"The server did not answer in time (step {step.value})",
            detail=f"no complete reply{within}",
            retryable=True,
        )

    for link in links:
        if isinstance(
            link,
            aiosmtplib.SMTPServerDisconnected
            | ConnectionResetError
            | ConnectionAbortedError
            | BrokenPipeError
            | EOFError,
        ):
            return SendFailure(
                FailureClass.DISCONNECTED,
                step,
                f"The server closed the connection unexpectedly (step {step.value})",
                detail=outer_text,
                retryable=True,
            )
    for link in links:
        if isinstance(link, aiosmtplib.SMTPException):
            return SendFailure(
                FailureClass.PROTOCOL,
                step,
                "The SMTP exchange went wrong",
                detail=redact_or(redact, str(link)),
            )
    if isinstance(exc, OSError):
        return SendFailure(
            FailureClass.UNREACHABLE if step is Step.CONNECT else FailureClass.DISCONNECTED,
            step,
            "A network error ended the connection",
            detail=outer_text,
            retryable=True,
        )
    return SendFailure(
        FailureClass.UNEXPECTED,
        step,
        f"Unexpected error ({type(exc).__name__})",
        detail=outer_text,
    )


__all__ = [
    "REDACTED",
    "Redactor",
    "chain",
    "classify_exception",
    "classify_reply",
    "enhanced_code",
    "server_text",
]
