"""Settings models: the single source of truth for every rule of the form.

The same models validate the settings file, the CLI and the TUI form, so a rule
is written once. Every error names its field (``smtp.host``, ``reply_to``, …);
``field_errors`` turns a ``ValidationError`` into ``(field, message)`` pairs.

The password is never part of these models: it lives in the keyring, the
environment or a password command, and only in local variables during a send.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from enum import StrEnum
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import idna
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from transports.addresses import (
    check_header_text,
    check_no_line_breaks,
    normalize_address,
    shorten,
)


class Protocol(StrEnum):
    """How mail leaves: an SMTP server or an HTTP relay."""

    SMTP = "smtp"
    HTTP = "http"


class Security(StrEnum):
    """Connection security. Always explicit: there is no opportunistic mode."""

    TLS = "tls"
    """Implicit TLS from the first byte (port 465)."""
    STARTTLS = "starttls"
    """Plain connect, then STARTTLS is required; no STARTTLS offered is an error."""
    NONE = "none"
    """No encryption at all, chosen explicitly (an internal relay only)."""


class AuthMethod(StrEnum):
    """How an SMTP login proves itself: a password, or an OAuth2 access token."""

    PASSWORD = "password"
    """AUTH PLAIN / LOGIN / CRAM-MD5 with the password (keyring, env or command)."""
    OAUTH2 = "oauth2"
    """SASL XOAUTH2 with an access token from the ``[oauth]`` sign-in."""


class OAuthProvider(StrEnum):
    """Who issues the OAuth2 tokens."""

    MICROSOFT = "microsoft"
    """Microsoft Entra ID (Office 365 / Outlook): endpoints from the tenant."""
    GENERIC = "generic"
    """Any RFC 8628 provider: device authorization and token URLs from the settings."""


def security_for_port(port: int) -> Security:
    """The security mode a port usually means: 465 → tls, anything else → starttls."""
    return Security.TLS if port == 465 else Security.STARTTLS


def _walk_strings(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str, str]]:
    """Every string inside ``value`` with a dotted path, for the CR/LF check."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append((".".join(str(p) for p in path), value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(_walk_strings(item, (*path, str(key))))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_walk_strings(item, (*path, index)))
    return found


class StrictModel(BaseModel):
    """A section of the settings file: unknown keys are errors with a suggestion."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        unknown = [key for key in data if key not in known]
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = ", ".join(sorted(known))
            raise ValueError(f"unknown key {key!r}{hint}; valid keys here: {valid}")
        return data


def _check_address_field(value: str) -> str:
    """An optional address: empty means "not set"."""
    check_no_line_breaks(value)
    if value == "":
        return value
    return normalize_address(value)


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A DNS name (IDN allowed) or an IP literal; no scheme, port, path or spaces."""
    check_no_line_breaks(value)
    if value == "":
        return value
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    invisible = sorted(
        {f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in {"Cc", "Cf", "Co", "Cn"}}
    )
    if invisible:
        # IDNA silently drops some of these (U+200B, U+00AD): what was typed would
        # not be what is connected to, and what is shown would hide a character.
        raise ValueError(f"must not contain invisible or control characters ({invisible[0]})")
    if len(value) > 253 + 2:
        raise ValueError(f"is longer than 253 characters ({len(value)})")
    if "://" in value:
        raise ValueError("is a host name only: leave out the scheme (e.g. smtp.gmail.com)")
    if "/" in value or "@" in value:
        raise ValueError("is a host name only: no path, no user (e.g. smtp.gmail.com)")
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(literal)
    except ValueError:
        pass
    else:
        return literal
    if ":" in value:
        raise ValueError("must not include a port: put the port in the Port field")
    name = value.rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{shorten(value)} is not a valid host name ({exc})") from None
    if len(ascii_name) > 253:
        raise ValueError("is longer than 253 characters")
    labels = ascii_name.lower().split(".")
    for label in labels:
        if not _HOST_LABEL.match(label):
            raise ValueError(
                f"{shorten(value)} is not a valid host name: use letters, digits, hyphens and dots"
            )
    if labels[-1].isdigit():
        # e.g. 1.2.3.256: not an IP address, and no top-level domain is all digits.
        raise ValueError(f"{shorten(value)} is neither a valid IP address nor a host name")
    return value


MAX_PATH = 4096
"""Linux's PATH_MAX: a longer path cannot be opened anyway."""
MAX_USERNAME = 512


def check_path(value: str) -> str:
    """A file or folder path from the settings ("" = not set).

    No line breaks, NUL or other control characters (a path is shown in the
    terminal and the form), no leading or trailing spaces (a paste error that
    would name another file), at most ``MAX_PATH`` characters.
    """
    check_no_line_breaks(value)
    if value == "":
        return value
    if not value.strip():
        raise ValueError("is only spaces: leave it empty or give a path")
    if value != value.strip():
        raise ValueError("must not start or end with spaces")
    bad = sorted(
        {f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in {"Cc", "Zl", "Zp"}}
    )
    if bad:
        raise ValueError(f"must not contain control characters or line breaks ({', '.join(bad)})")
    if len(value) > MAX_PATH:
        raise ValueError(f"is longer than {MAX_PATH} characters ({len(value)})")
    return value


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals."""
    if host.lower() in {"localhost", "localhost."} or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpSettings(StrictModel):
    """The ``[smtp]`` section."""

    host: str = ""
    """DNS name or IP literal of the SMTP server."""
    port: int = Field(default=587)
    """TCP port, 1–65535 (465 implicit TLS, 587 submission, 25 relay)."""
    security: Security = Security.STARTTLS
    """Connection security; explicit, never opportunistic."""
    username: str = ""
    """Login name; empty means no AUTH (an internal relay that trusts this host)."""
    from_address: str = ""
    """Sender address; required only when the username is not an address."""
    verify_tls: bool = True
    """Verify the server certificate (off only for one's own self-signed server)."""
    ca_file: str = ""
    """Optional PEM file with a CA or server certificate to trust."""
    password_command: list[str] = Field(default_factory=list)
    """Optional command that prints the password (run without a shell)."""
    auth: AuthMethod = AuthMethod.PASSWORD
    """``password`` (default) or ``oauth2`` (XOAUTH2 with the ``[oauth]`` sign-in)."""

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("port", mode="before")
    @classmethod
    def _no_boolean_port(cls, value: Any) -> Any:
        if isinstance(value, bool):
            # Python's True == 1: a boolean would silently become port 1.
            raise ValueError("must be a number between 1 and 65535, not true/false")
        return value

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be between 1 and 65535")
        return value

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        check_header_text(value)
        if value != value.strip():
            raise ValueError("must not start or end with spaces")
        if len(value) > MAX_USERNAME:
            raise ValueError(f"is longer than {MAX_USERNAME} characters ({len(value)})")
        return value

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        return _check_address_field(value)

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str) -> str:
        return check_path(value)

    @field_validator("password_command")
    @classmethod
    def _check_command(cls, value: list[str]) -> list[str]:
        for part in value:
            check_no_line_breaks(part)
        if value and not value[0].strip():
            raise ValueError("the first element must be the program to run")
        return value

    @property
    def sender(self) -> str:
        """The envelope and From address: the username when it is an address."""
        if self.from_address:
            return self.from_address
        try:
            return normalize_address(self.username)
        except ValueError:
            return ""


class HttpSettings(StrictModel):
    """The ``[http]`` section."""

    url: str = ""
    """The relay endpoint: https://, or http:// to a loopback address only."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        check_no_line_breaks(value)
        if value == "":
            return value
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({exc})") from None
        if parts.scheme not in {"https", "http"}:
            raise ValueError("must start with https://")
        if not parts.hostname:
            raise ValueError("has no host name")
        if parts.username or parts.password:
            raise ValueError("must not contain a user or password: the key is kept apart")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("plain http:// is only allowed to a loopback address; use https://")
        del port
        return value

    @property
    def is_plain_http(self) -> bool:
        """True when the URL is http:// (loopback only): shown with a warning."""
        return self.url.startswith("http://")


def check_endpoint_url(value: str) -> str:
    """An OAuth endpoint: https://, or http:// to a loopback address only (like http.url)."""
    check_no_line_breaks(value)
    if value == "":
        return value
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in {"https", "http"}:
        raise ValueError("must start with https://")
    if not parts.hostname:
        raise ValueError("has no host name")
    if parts.username or parts.password:
        raise ValueError("must not contain a user or password")
    if parts.fragment:
        raise ValueError("must not contain a #fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("plain http:// is only allowed to a loopback address; use https://")
    return value


_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 section 3.3


class OAuthSettings(StrictModel):
    """The ``[oauth]`` section: used when ``smtp.auth = "oauth2"``.

    A public client (device authorization grant, RFC 8628): there is no client
    secret, so nothing here is secret. The tokens live in the keyring.
    """

    provider: OAuthProvider = OAuthProvider.MICROSOFT
    """``microsoft`` (Office 365 / Outlook) or ``generic`` (URLs and scope below)."""
    tenant: str = "organizations"
    """Microsoft: the tenant id (a GUID), a verified domain, or ``organizations``."""
    client_id: str = ""
    """The Application (client) ID of the user's own app registration."""
    device_authorization_url: str = ""
    """Generic provider: the device authorization endpoint (RFC 8628 section 3.1)."""
    token_url: str = ""
    """Generic provider: the token endpoint."""
    scope: str = ""
    """Generic provider: the scopes to ask for, separated by spaces (include offline access)."""

    @field_validator("tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        check_no_line_breaks(value)
        if value == "":
            return value
        if not _TENANT.match(value) or ".." in value:
            raise ValueError(
                "must be a tenant id (a GUID), a domain such as contoso.onmicrosoft.com, "
                "or organizations"
            )
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        check_no_line_breaks(value)
        if value != value.strip() or any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        if len(value) > 200 or not value.isprintable():
            raise ValueError("is not a client id (printable characters, at most 200)")
        return value

    @field_validator("device_authorization_url", "token_url")
    @classmethod
    def _check_urls(cls, value: str) -> str:
        return check_endpoint_url(value)

    @field_validator("scope")
    @classmethod
    def _check_scope(cls, value: str) -> str:
        check_no_line_breaks(value)
        for token in value.split(" "):
            if value and not _SCOPE_TOKEN.match(token):
                raise ValueError(
                    "must be scope names separated by single spaces (no quotes or backslashes)"
                )
        return value


class DocumentsSettings(StrictModel):
    """The ``[documents]`` section."""

    folder: str = ""
    """Documents folder; empty means the user data dir, seeded with samples."""
    fallback_font: str = ""
    """Optional TTF/OTF font for scripts DejaVu Sans lacks (CJK)."""

    @field_validator("folder", "fallback_font")
    @classmethod
    def _check_paths(cls, value: str) -> str:
        return check_path(value)


# Presets whose providers' certificates are always valid: "do not verify" is
# refused for them (a certificate error there means interception, not a
# self-signed box).
STRICT_TLS_PRESETS: frozenset[str] = frozenset({"gmail", "yahoo", "office365", "outlook"})


class Settings(StrictModel):
    """The whole settings file."""

    FIELD_LABELS: ClassVar[dict[str, str]] = {
        "protocol": "Protocol",
        "preset": "Provider preset",
        "from_name": "Sender name",
        "copy_to": "Send a copy to",
        "reply_to": "Reply address",
        "timeout": "Timeout",
        "smtp.host": "Host name",
        "smtp.port": "Port",
        "smtp.security": "Security",
        "smtp.username": "Username",
        "smtp.from_address": "Email address (From)",
        "smtp.verify_tls": "Verify TLS certificate",
        "smtp.ca_file": "Trusted certificate file",
        "smtp.password_command": "Password command",
        "smtp.auth": "Authentication",
        "oauth.provider": "OAuth provider",
        "oauth.tenant": "Tenant",
        "oauth.client_id": "Application (client) ID",
        "oauth.device_authorization_url": "Device authorization URL",
        "oauth.token_url": "Token URL",
        "oauth.scope": "Scope",
        "http.url": "HTTP server URL",
        "documents.folder": "Documents folder",
        "documents.fallback_font": "Fallback font",
    }

    protocol: Protocol = Protocol.SMTP
    """``smtp`` or ``http``."""
    preset: str = "custom"
    """Which preset filled the form, or ``custom``."""
    from_name: str = ""
    """Optional display name of the sender."""
    copy_to: str = ""
    """Optional blind copy of every email (envelope only, never a header)."""
    reply_to: str = ""
    """Optional Reply-To for SMTP; required for HTTP."""
    timeout: float = 20
    """Seconds allowed for each step of an exchange."""
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    documents: DocumentsSettings = Field(default_factory=DocumentsSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)

    @model_validator(mode="before")
    @classmethod
    def _reject_line_breaks(cls, data: Any) -> Any:
        for path, text in _walk_strings(data):
            if "\r" in text or "\n" in text:
                raise ValueError(f"{path}: must not contain a line break (CR or LF)")
        return data

    @field_validator("preset")
    @classmethod
    def _check_preset(cls, value: str) -> str:
        # Imported here: presets import this module for Security.
        from transports.presets import PRESETS

        if value not in PRESETS:
            close = difflib.get_close_matches(value, sorted(PRESETS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown preset {shorten(value)}{hint}; one of: {', '.join(PRESETS)}")
        return value

    @field_validator("from_name")
    @classmethod
    def _check_from_name(cls, value: str) -> str:
        check_header_text(value)
        if len(value) > 200:
            raise ValueError("is longer than 200 characters")
        return value

    @field_validator("copy_to", "reply_to")
    @classmethod
    def _check_addresses(cls, value: str) -> str:
        return _check_address_field(value)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if not 1 <= value <= 600:
            raise ValueError("must be between 1 and 600 seconds")
        return value

    @model_validator(mode="after")
    def _check_complete(self) -> Self:
        errors: list[tuple[str, str]] = []
        if self.protocol is Protocol.SMTP:
            smtp = self.smtp
            if not smtp.host:
                errors.append(("smtp.host", "is required for SMTP"))
            if not smtp.sender:
                if smtp.username:
                    errors.append(
                        (
                            "smtp.from_address",
                            "is required because the username is not an email address",
                        )
                    )
                else:
                    errors.append(("smtp.from_address", "is required when there is no username"))
            if smtp.auth is AuthMethod.OAUTH2:
                errors.extend(self._oauth_errors())
            if not smtp.verify_tls and self.preset in STRICT_TLS_PRESETS:
                errors.append(
                    (
                        "smtp.verify_tls",
                        "cannot be turned off for this provider: its certificates are always "
                        "valid, so a certificate error means the connection is intercepted",
                    )
                )
        else:
            if not self.http.url:
                errors.append(("http.url", "is required for HTTP"))
            if not self.reply_to:
                errors.append(("reply_to", "is required for HTTP: replies go to this address"))
        if errors:
            raise ValueError("\n".join(f"{field}: {message}" for field, message in errors))
        return self

    def _oauth_errors(self) -> list[tuple[str, str]]:
        """What ``smtp.auth = "oauth2"`` needs: a mailbox login and a complete ``[oauth]``."""
        errors: list[tuple[str, str]] = []
        oauth = self.oauth
        if not self.smtp.username:
            errors.append(
                ("smtp.username", "is required for OAuth2: the mailbox that signs in (XOAUTH2)")
            )
        if not oauth.client_id:
            errors.append(
                (
                    "oauth.client_id",
                    "is required for OAuth2: the Application (client) ID of your app registration",
                )
            )
        if oauth.provider is OAuthProvider.MICROSOFT:
            if oauth.client_id and not _GUID.match(oauth.client_id):
                errors.append(
                    (
                        "oauth.client_id",
                        "must be the Application (client) ID from Entra ID, a GUID like "
                        "00000000-0000-0000-0000-000000000000",
                    )
                )
            if not oauth.tenant:
                errors.append(
                    ("oauth.tenant", "is required: your tenant id, domain, or organizations")
                )
        else:
            for name in ("device_authorization_url", "token_url", "scope"):
                if not getattr(oauth, name):
                    errors.append((f"oauth.{name}", "is required for the generic provider"))
        return errors

    @property
    def sender(self) -> str:
        """The envelope sender and From address."""
        if self.protocol is Protocol.HTTP:
            return self.reply_to
        return self.smtp.sender

    @classmethod
    def unconfigured(cls) -> Settings:
        """Defaults for a missing file: not valid for sending until filled in."""
        return cls.model_construct()


# "smtp.host: ..." and deeper paths from the CR/LF check, e.g. "smtp.password_command.1: ...".
_PATH_PREFIX = re.compile(r"^(?P<field>[a-z_]+(?:\.[a-z0-9_]+)*): (?P<message>.*)$")


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` pairs from a ``ValidationError``, field names dotted.

    Cross-field rules raise one error whose message lists ``field: message``
    parts, one per line — they are split back out here.
    """
    pairs: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif message.startswith("Assertion failed, "):
            message = message[len("Assertion failed, ") :]
        parts = message.split("\n")
        for part in parts:
            match = _PATH_PREFIX.match(part)
            if match and not loc.endswith(match["field"]):
                sub = match["field"]
                pairs.append((f"{loc}.{sub}" if loc else sub, match["message"]))
            else:
                pairs.append((loc, part))
    return pairs


def describe_errors(error: ValidationError) -> str:
    """One line per problem, each naming the field: for the CLI and the store."""
    return "\n".join(f"{field or 'settings'}: {message}" for field, message in field_errors(error))
