"""Classified failures.

Every way a send or test can fail ends in one ``SendFailure``: the failure
class (what went wrong, in a form hints can be keyed on), the step where it
happened, a short title, the server's reply when there was one, and the hints
chosen by class and preset (see ``transports.hints``).

    SendFailure
     └─ carries FailureClass: DNS, REFUSED, CONNECT_TIMEOUT, GREETING_TIMEOUT,
        TLS_*, CERT_*, STARTTLS_*, AUTH_*, SENDER_*, RECIPIENT_*, SIZE, TEMPORARY,
        DISCONNECTED, TIMEOUT, PROTOCOL, HTTP_*, CANCELLED, PASSWORD_MISSING,
        OAUTH_SIGN_IN

The message of a ``SendFailure`` never contains a credential: it is built from
the server's reply and our own words, never from the arguments of a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from transports.events import Step


class FailureClass(StrEnum):
    """What went wrong, as precisely as we can tell."""

    DNS = "dns"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    CONNECT_TIMEOUT = "connect_timeout"
    GREETING_TIMEOUT = "greeting_timeout"
    TLS_WRONG_VERSION = "tls_wrong_version"
    """Implicit TLS spoken to a plain/STARTTLS port (SSL: WRONG_VERSION_NUMBER)."""
    TLS_EXPECTED = "tls_expected"
    """Plain/STARTTLS spoken to an implicit-TLS port: the greeting never comes."""
    TLS_HANDSHAKE = "tls_handshake"
    TLS_OUTDATED = "tls_outdated"
    """The server's TLS is too old or weak (dh key too small, unsupported protocol)."""
    CERT_SELF_SIGNED = "cert_self_signed"
    CERT_UNTRUSTED = "cert_untrusted"
    CERT_HOSTNAME = "cert_hostname"
    CERT_EXPIRED = "cert_expired"
    CERT_INVALID = "cert_invalid"
    CA_FILE = "ca_file"
    """The trusted certificate file cannot be read or is not PEM."""
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    STARTTLS_REFUSED = "starttls_refused"
    ENCRYPTION_REQUIRED = "encryption_required"
    """The server wants STARTTLS before anything else (530 / 538 with security none)."""
    GREETING_REJECTED = "greeting_rejected"
    """The server answered the connection with 5xx (e.g. 554: this client is not welcome)."""
    AUTH_NOT_OFFERED = "auth_not_offered"
    AUTH_NO_COMMON_MECHANISM = "auth_no_common_mechanism"
    AUTH_FAILED = "auth_failed"
    AUTH_REQUIRED = "auth_required"
    APP_PASSWORD_REQUIRED = "app_password_required"
    WEB_LOGIN_REQUIRED = "web_login_required"
    """Gmail 534 5.7.14: the account must be signed in once in a browser first."""
    SMTP_AUTH_DISABLED = "smtp_auth_disabled"
    """Office 365: SmtpClientAuthentication is disabled for the tenant/mailbox."""
    BASIC_AUTH_DISABLED = "basic_auth_disabled"
    """Office 365: basic authentication is off; OAuth2 is needed."""
    SENDER_REJECTED = "sender_rejected"
    SEND_AS_DENIED = "send_as_denied"
    RECIPIENT_REJECTED = "recipient_rejected"
    MESSAGE_TOO_BIG = "message_too_big"
    MESSAGE_REJECTED = "message_rejected"
    """The final DATA reply refused the message (content policy, spam, …)."""
    SMTPUTF8_NOT_OFFERED = "smtputf8_not_offered"
    """An address needs SMTPUTF8 and the server does not offer it."""
    TEMPORARY = "temporary"
    DISCONNECTED = "disconnected"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"
    """The server said something that is not SMTP/HTTP as we know it."""
    PASSWORD_MISSING = "password_missing"
    OAUTH_SIGN_IN = "oauth_sign_in"
    """OAuth2: no usable sign-in (not signed in, revoked or expired, token server down)."""
    HTTP_UNAUTHORIZED = "http_unauthorized"
    HTTP_NOT_FOUND = "http_not_found"
    HTTP_TOO_LARGE = "http_too_large"
    HTTP_RATE_LIMITED = "http_rate_limited"
    HTTP_SERVER_ERROR = "http_server_error"
    HTTP_CLIENT_ERROR = "http_client_error"
    HTTP_REDIRECT = "http_redirect"
    HTTP_BAD_RESPONSE = "http_bad_response"
    CANCELLED = "cancelled"
    UNEXPECTED = "unexpected"


@dataclass(eq=False)
class SendFailure(Exception):
    """A classified failure of a test or send."""

    failure_class: FailureClass
    step: Step
    title: str
    """One short line: what failed."""
    detail: str = ""
    """What we saw: the server's reply or the library's words (never a credential)."""
    reply_code: int | None = None
    reply_text: str = ""
    hints: tuple[str, ...] = field(default=())
    """Filled by ``transports.hints.with_hints`` for the class and preset."""
    retryable: bool = False
    """True for temporary failures (4xx, disconnects): a batch may retry."""

    def __post_init__(self) -> None:
        super().__init__(self.title)

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for ``--json`` and the send log."""
        return {
            "class": self.failure_class.value,
            "step": self.step.value,
            "title": self.title,
            "detail": self.detail,
            "reply_code": self.reply_code,
            "reply_text": self.reply_text,
            "hints": list(self.hints),
            "retryable": self.retryable,
        }
