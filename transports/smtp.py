"""The SMTP transport, on aiosmtplib, driven one step at a time.

Each step of the exchange is one or more transcript events, in order:
resolve → connect → greeting → EHLO → STARTTLS → TLS details → EHLO again →
AUTH → MAIL FROM / RCPT TO / DATA → queue id → QUIT.

Rules this module keeps:

- Security is explicit: ``tls`` is implicit TLS, ``starttls`` *requires*
  STARTTLS (a server that does not offer it is an error, never a downgrade),
  ``none`` is plain text by choice. aiosmtplib's opportunistic mode is never
  used (``start_tls=False``; ``starttls()`` is called here).
- Certificates are verified unless the settings turn it off; a trusted
  certificate file adds a PEM CA or server certificate to the trust store.
- Credentials are only sent inside TLS, or with security ``none``. They never
  reach an event, a log or an exception text: AUTH lines read ``<redacted>``
  and every server text passes through a ``Redactor``.
- OAuth2 (``smtp.auth = "oauth2"``): SASL XOAUTH2 with an access token from a
  ``TokenSource`` (fetched before connecting; redacted like a password); a 535
  is answered by one refresh and one more AUTH on the same connection.
- Every step has its own timeout (``settings.timeout``), enforced with
  ``asyncio.timeout`` around the whole step, so a server that drips one byte
  a second still times out.
- Cancellation closes the socket at once (``abort()``), without a QUIT.
- One connection sends many messages; a refused transaction is ended with
  RSET so the session stays usable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
import idna
from aiosmtplib import SMTPResponse

from transports.base import SendResult, TokenSource, Transport
from transports.classify import (
    REDACTED,
    Redactor,
    chain,
    classify_exception,
    classify_reply,
    server_text,
)
from transports.errors import FailureClass, SendFailure
from transports.events import Clock, Direction, EventSink, Step, TranscriptEvent
from transports.message import Outgoing
from transports.settings import AuthMethod, Security, Settings

T = TypeVar("T")

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_AUTH_PREFERENCE = ("plain", "login", "cram-md5")
_QUEUE_ID_PATTERNS = (
    re.compile(r"queued as ([A-Za-z0-9._:+/=-]+)", re.I),
    re.compile(r"\bid=([A-Za-z0-9._:+/=-]+)", re.I),
    # Gmail: "2.0.0 OK  1732700000 5b1f17b1804b1-434...si123.0 - gsmtp"
    re.compile(r"(?:OK\s+\d+\s+)?(\S+) - gsmtp", re.I),
    # Office 365: "2.0.0 OK <DB9PR...@....prod.outlook.com> [Hostname=...]"
    re.compile(r"\bOK\s+<([^>\s]+)>", re.I),
    # Exchange Server: "2.6.0 <ID@EX01.corp.example> [InternalId=...] Queued mail for delivery"
    re.compile(r"\b2\.6\.0\s+<([^>\s]+)>"),
    # Sendmail: "2.0.0 4ARA1b2C012345 Message accepted for delivery"
    re.compile(r"\b([A-Za-z0-9]{8,32}) Message accepted for delivery", re.I),
    # Amazon SES and others: "Ok 0100018c-5a6b...-000000"
    re.compile(r"\bOK:?\s+([0-9a-f][0-9a-f-]{15,})\b", re.I),
)


def parse_queue_id(reply: str) -> str:
    """The server's id for a queued message, from the final DATA reply (or ``""``)."""
    for pattern in _QUEUE_ID_PATTERNS:
        match = pattern.search(reply)
        if match:
            return match.group(1).rstrip(".,;")
    return ""


def dot_stuff(data: bytes) -> bytes:
    """The message as it travels after DATA: CRLF endings, leading dots doubled, ``.``."""
    data = _LINE_ENDINGS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def _sized(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size} bytes ({_human_size(size)})"


@dataclass(frozen=True)
class TlsInfo:
    """What the TLS handshake established, for the transcript and the UI."""

    version: str
    cipher: str
    bits: int
    subject: str
    issuer: str
    not_after: datetime | None
    names: tuple[str, ...]
    verified: bool
    trust: str
    """How the certificate was checked, in words."""


def describe_certificate(der: bytes) -> tuple[str, str, datetime | None, tuple[str, ...]]:
    """Subject, issuer, expiry and names of a DER certificate (works unverified too)."""
    from cryptography import x509  # here: ~20-30 ms that a verified connection skips

    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        names += [f"DNS:{name}" for name in san.get_values_for_type(x509.DNSName)]
        names += [f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    return (
        cert.subject.rfc4514_string() or "(empty)",
        cert.issuer.rfc4514_string() or "(empty)",
        cert.not_valid_after_utc,
        tuple(names),
    )


_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
"""OpenSSL's long attribute names (``getpeercert()``) → RFC 4514 short names, the
names cryptography's ``rfc4514_string`` uses."""


def _escape_dn_value(value: str) -> str:
    """RFC 4514 escaping, as cryptography's ``rfc4514_string`` does it."""
    if not value:
        return ""
    for plain, escaped in (
        ("\\", "\\\\"),
        ('"', '\\"'),
        ("+", "\\+"),
        (",", "\\,"),
        (";", "\\;"),
        ("<", "\\<"),
        (">", "\\>"),
        ("\0", "\\00"),
    ):
        value = value.replace(plain, escaped)
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _rfc4514(name: Any) -> str | None:
    """A ``getpeercert()`` name as ``rfc4514_string`` writes it; None when unsure."""
    parts: list[str] = []
    for rdn in reversed(name):
        if len(rdn) != 1:  # multi-valued RDN: its order is cryptography's business
            return None
        key, value = rdn[0]
        short = _SHORT_NAMES.get(key)
        if short is None or not isinstance(value, str):
            return None
        parts.append(f"{short}={_escape_dn_value(value)}")
    return ",".join(parts) or "(empty)"


def describe_peer_certificate(
    cert: Mapping[str, Any] | None,
) -> tuple[str, str, datetime | None, tuple[str, ...]] | None:
    """``describe_certificate`` from the ``getpeercert()`` of a verified connection,
    without importing cryptography; None when the dict holds something only the DER
    path describes faithfully (an unusual attribute, a multi-valued name)."""
    if not cert:
        return None
    try:
        subject = _rfc4514(cert.get("subject", ()))
        issuer = _rfc4514(cert.get("issuer", ()))
        if subject is None or issuer is None or "notAfter" not in cert:
            return None
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
        alt = cert.get("subjectAltName", ())
        dns = [f"DNS:{value}" for kind, value in alt if kind == "DNS"]
        ips = [f"IP:{ipaddress.ip_address(value)}" for kind, value in alt if kind == "IP Address"]
    except (ValueError, TypeError):
        return None
    return subject, issuer, not_after, tuple(dns + ips)


def _ascii_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    if host.isascii():
        return host.rstrip(".")
    return idna.encode(host.rstrip("."), uts46=True).decode("ascii")


def _clean(response: SMTPResponse) -> SMTPResponse:
    """The reply with undecodable bytes shown as U+FFFD (see ``server_text``)."""
    message = server_text(response.message)
    return response if message is response.message else SMTPResponse(response.code, message)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned child's outcome as seen (no "never retrieved" warning)."""
    if not future.cancelled():
        future.exception()


def _local_name(sock: socket.socket) -> str:
    """The EHLO name: this host's FQDN when it has one, else an address literal.

    ``socket.getfqdn()`` can stall for seconds on a machine with slow DNS
    (FACTS.md), so it is never called.
    """
    name = socket.gethostname()
    if "." in name and re.fullmatch(r"[A-Za-z0-9.-]+", name):
        return name
    address = str(sock.getsockname()[0])
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


class SmtpTransport(Transport):
    """SMTP with explicit security, one transcript event per step."""

    def __init__(
        self,
        settings: Settings,
        secret: str | None,
        on_event: EventSink,
        *,
        clock: Clock | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        super().__init__(settings, secret, on_event, clock=clock)
        self._redact = Redactor(secret, settings.smtp.username)
        self._token_source = token_source
        self._token: str | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._sock: socket.socket | None = None
        self._encrypted = False
        self._context: ssl.SSLContext | None = None
        self._host = ""
        self.tls_info: TlsInfo | None = None
        """Filled after the TLS handshake."""
        self.extensions: dict[str, str] = {}
        """The capabilities of the last EHLO (lower-case keywords)."""

    # --- events and steps ------------------------------------------------------------

    def _emit(self, step: Step, direction: Direction, text: str) -> None:
        self.on_event(
            TranscriptEvent(
                step=step,
                direction=direction,
                text=self._redact(text),
                elapsed_ms=self.clock.elapsed_ms(),
                encrypted=self._encrypted,
            )
        )

    def _emit_reply(self, step: Step, code: int, message: str) -> None:
        lines = message.split("\n") or [""]
        for index, line in enumerate(lines):
            sep = " " if index == len(lines) - 1 else "-"
            self._emit(step, Direction.IN, f"{code}{sep}{line}".rstrip())

    def _failure(self, exc: BaseException, step: Step) -> SendFailure:
        for link in chain(exc):
            if isinstance(link, aiosmtplib.SMTPResponseException) and 200 <= link.code <= 599:
                self._emit_reply(step, link.code, server_text(link.message))
                break
        return classify_exception(
            exc,
            step,
            port=self.settings.smtp.port,
            implicit_tls=self.settings.smtp.security is Security.TLS,
            timeout=self.settings.timeout,
            redact=self._redact,
        )

    async def _guarded(self, awaitable: Awaitable[T], timeout: float) -> T:
        """Await in a child task, so that a cancellation or timeout always wins.

        aiosmtplib uses ``asyncio.wait_for``, which on Python 3.11 can swallow a
        cancellation that races with its inner future (CPython gh-86296): a
        cancelled test would then sit out the whole timeout. Waiting on the
        child through ``asyncio.wait`` is never swallowed; the socket is then
        closed at once, which ends the child too.
        """
        child = asyncio.ensure_future(awaitable)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait({child})
        except BaseException:
            if not child.done():
                child.cancel()
                child.add_done_callback(_retrieve)
            self.abort()
            raise
        return child.result()

    async def _run(self, step: Step, awaitable: Awaitable[T]) -> T:
        """Await one step under the per-step timeout; failures become ``SendFailure``."""
        try:
            return await self._guarded(awaitable, self.settings.timeout)
        except asyncio.CancelledError:
            raise
        except SendFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, step) from None

    def _client(self, step: Step) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            raise SendFailure(
                FailureClass.DISCONNECTED,
                step,
                "The connection to the server is closed",
                detail="the server or an earlier failure ended the session",
                retryable=True,
            )
        return smtp

    async def _command(self, step: Step, shown: str, *args: bytes) -> SMTPResponse:
        smtp = self._client(step)
        self._emit(step, Direction.OUT, shown)
        response = _clean(await self._run(step, smtp.execute_command(*args)))
        self._emit_reply(step, response.code, response.message)
        return response

    def _reply_failure(self, response: SMTPResponse, step: Step) -> SendFailure:
        return classify_reply(response.code, response.message, step, redact=self._redact)

    # --- open: connect, secure, authenticate -----------------------------------------

    async def open(self) -> None:
        """Resolve, connect, greet, EHLO, STARTTLS, EHLO again, AUTH."""
        smtp_settings = self.settings.smtp
        if smtp_settings.auth is AuthMethod.OAUTH2:
            # Before connecting: a missing sign-in fails without touching the server.
            self._token = await self._fetch_token(refresh=False)
        elif smtp_settings.username and not self._secret:
            raise SendFailure(
                FailureClass.PASSWORD_MISSING,
                Step.AUTH,
                "No password is available for this login",
                detail=(
                    f"the username {smtp_settings.username!r} is set but no password was "
                    "found (keyring, SMTPDESK_PASSWORD or the password command); nothing "
                    "was sent"
                ),
            )
        security = smtp_settings.security
        if security is not Security.NONE:
            self._context = self._tls_context()
        self._host = _ascii_host(smtp_settings.host)
        addresses = await self._resolve()
        sock = await self._connect(addresses)
        await self._greet(sock)
        await self._ehlo()
        if security is Security.STARTTLS:
            await self._starttls()
            await self._ehlo()
        elif security is Security.NONE:
            self._emit(
                Step.EHLO,
                Direction.INFO,
                "security is none: this session is not encrypted"
                + (
                    " (the server offers STARTTLS, not used)"
                    if "starttls" in self.extensions
                    else ""
                ),
            )
        if smtp_settings.username:
            await self._auth(smtp_settings.username, self._secret or "")

    def _tls_context(self) -> ssl.SSLContext:
        """The client TLS context.

        With a trusted certificate file, that file is the whole trust for this server
        (as curl's ``--cacert`` or msmtp's ``tls_trust_file``): narrower than the
        system store, and the system bundle is not parsed (~20-30 ms of a test).
        """
        smtp_settings = self.settings.smtp
        if not smtp_settings.verify_tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if not smtp_settings.ca_file:
            return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        path = Path(smtp_settings.ca_file).expanduser()
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(path))
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SendFailure(
                FailureClass.CA_FILE,
                Step.TLS,
                f"The trusted certificate file cannot be used: {path}",
                detail=f"{path}: {reason} (it must be a readable PEM certificate file)",
            ) from None
        # A server certificate (not only a CA) may be the trust anchor.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    async def _resolve(self) -> list[tuple[socket.AddressFamily, tuple[str, int]]]:
        port = self.settings.smtp.port
        self._emit(Step.RESOLVE, Direction.INFO, f"resolving {self._host}")
        start = self.clock.elapsed_ms()
        loop = asyncio.get_running_loop()
        infos = await self._run(
            Step.RESOLVE,
            loop.getaddrinfo(self._host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
        )
        addresses: list[tuple[socket.AddressFamily, tuple[str, int]]] = []
        for family, _type, _proto, _name, sockaddr in infos:
            item = (family, (str(sockaddr[0]), int(sockaddr[1])))
            if item not in addresses:
                addresses.append(item)
        found = ", ".join(address[0] for _family, address in addresses)
        took = self.clock.elapsed_ms() - start
        self._emit(Step.RESOLVE, Direction.INFO, f"{self._host} → {found} ({took:.1f} ms)")
        return addresses

    async def _connect(
        self, addresses: list[tuple[socket.AddressFamily, tuple[str, int]]]
    ) -> socket.socket:
        loop = asyncio.get_running_loop()
        last: BaseException | None = None
        for family, sockaddr in addresses:
            self._emit(
                Step.CONNECT, Direction.INFO, f"connecting to {sockaddr[0]} port {sockaddr[1]}"
            )
            start = self.clock.elapsed_ms()
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            self._sock = sock
            try:
                async with asyncio.timeout(self.settings.timeout):
                    await loop.sock_connect(sock, sockaddr)
            except asyncio.CancelledError:
                self.abort()
                raise
            except OSError as exc:  # TimeoutError is an OSError
                sock.close()
                self._sock = None
                last = exc
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                self._emit(Step.CONNECT, Direction.INFO, f"{sockaddr[0]}: {reason}")
                continue
            took = self.clock.elapsed_ms() - start
            local = sock.getsockname()
            self._emit(
                Step.CONNECT,
                Direction.INFO,
                f"connected to {sockaddr[0]} port {sockaddr[1]} in {took:.1f} ms "
                f"(from {local[0]} port {local[1]})",
            )
            return sock
        assert last is not None, "getaddrinfo returned no address"
        raise self._failure(last, Step.CONNECT)

    async def _greet(self, sock: socket.socket) -> None:
        implicit = self.settings.smtp.security is Security.TLS
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            local_hostname=_local_name(sock),
            timeout=self.settings.timeout,
            use_tls=implicit,
            start_tls=False,
            tls_context=self._context if implicit else None,
            sock=sock,
        )
        self._smtp = smtp
        if implicit:
            self._emit(Step.TLS, Direction.INFO, "implicit TLS: handshake before the greeting")
        response = _clean(await self._run(Step.GREETING, smtp.connect()))
        if implicit:
            self._encrypted = True
            self._describe_tls(smtp)
        self._emit_reply(Step.GREETING, response.code, response.message)

    async def _ehlo(self) -> None:
        smtp = self._client(Step.EHLO)
        name = smtp.local_hostname or "[127.0.0.1]"
        response = await self._command(Step.EHLO, f"EHLO {name}", b"EHLO", name.encode("ascii"))
        if response.code == 250:
            smtp.last_ehlo_response = response
        elif response.code in {500, 502}:
            # A server without ESMTP: HELO still lets us send plain 7-bit mail.
            response = await self._command(Step.EHLO, f"HELO {name}", b"HELO", name.encode())
            if response.code != 250:
                raise self._reply_failure(response, Step.EHLO)
            smtp.last_helo_response = response
        else:
            raise self._reply_failure(response, Step.EHLO)
        self.extensions = dict(smtp.esmtp_extensions)

    async def _starttls(self) -> None:
        smtp = self._client(Step.STARTTLS)
        if not smtp.supports_extension("starttls"):
            raise SendFailure(
                FailureClass.STARTTLS_NOT_OFFERED,
                Step.STARTTLS,
                "The server does not offer STARTTLS on a connection that requires it",
                detail=(
                    "its EHLO reply has no STARTTLS: the session would stay unencrypted, so "
                    "it was ended before anything (and no password) was sent"
                ),
            )
        self._emit(Step.STARTTLS, Direction.OUT, "STARTTLS")
        response = _clean(
            await self._run(
                Step.STARTTLS, smtp.starttls(server_hostname=self._host, tls_context=self._context)
            )
        )
        self._encrypted = True
        self._emit_reply(Step.STARTTLS, response.code, response.message)
        self._describe_tls(smtp)

    def _describe_tls(self, smtp: aiosmtplib.SMTP) -> None:
        ssl_object = smtp.get_transport_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            self._emit(Step.TLS, Direction.INFO, "TLS details unavailable")
            return
        cipher = ssl_object.cipher() or ("?", "?", 0)
        der = ssl_object.getpeercert(binary_form=True)
        smtp_settings = self.settings.smtp
        verified = smtp_settings.verify_tls
        if not verified:
            trust = "NOT verified (certificate verification is turned off)"
        elif smtp_settings.ca_file:
            trust = f"verified (trusting only {smtp_settings.ca_file})"
        else:
            trust = "verified (system CA store, host name checked)"
        subject = issuer = "(no certificate)"
        not_after: datetime | None = None
        names: tuple[str, ...] = ()
        # A verified connection has the parsed certificate already (no cryptography
        # import, ~20-30 ms of every `smtpdesk test`); an unverified one only the DER.
        described = describe_peer_certificate(ssl_object.getpeercert()) if verified else None
        if described is not None:
            subject, issuer, not_after, names = described
        elif der:
            try:
                subject, issuer, not_after, names = describe_certificate(der)
            except ValueError as exc:
                subject = f"(unreadable certificate: {exc})"
        self.tls_info = TlsInfo(
            version=ssl_object.version() or "?",
            cipher=str(cipher[0]),
            bits=int(cipher[2] or 0),
            subject=subject,
            issuer=issuer,
            not_after=not_after,
            names=names,
            verified=verified,
            trust=trust,
        )
        info = self.tls_info
        self._emit(
            Step.TLS, Direction.INFO, f"{info.version}, cipher {info.cipher} ({info.bits} bits)"
        )
        self._emit(Step.TLS, Direction.INFO, f"certificate subject: {info.subject}")
        self._emit(Step.TLS, Direction.INFO, f"issuer: {info.issuer}")
        if info.not_after is not None:
            days = (info.not_after - datetime.now(UTC)).days
            soon = f" (expires in {days} days)" if days < 30 else ""
            self._emit(
                Step.TLS,
                Direction.INFO,
                f"valid until {info.not_after:%Y-%m-%d %H:%M} UTC{soon}",
            )
        if info.names:
            self._emit(Step.TLS, Direction.INFO, f"names: {', '.join(info.names)}")
        self._emit(Step.TLS, Direction.INFO, f"certificate {info.trust}")

    async def _auth(self, username: str, secret: str) -> None:
        smtp = self._client(Step.AUTH)
        if not smtp.supports_extension("auth") or not smtp.server_auth_methods:
            detail = "its EHLO reply has no AUTH mechanism"
            if self.settings.smtp.security is Security.NONE and "starttls" in self.extensions:
                detail += (
                    "; it offers STARTTLS, and many servers offer AUTH only inside TLS: "
                    "choose security starttls"
                )
            raise SendFailure(
                FailureClass.AUTH_NOT_OFFERED,
                Step.AUTH,
                "The server does not offer authentication (AUTH)",
                detail=detail,
            )
        offered = smtp.server_auth_methods
        if self.settings.smtp.auth is AuthMethod.OAUTH2:
            await self._auth_xoauth2(smtp, username)
            return
        mechanism = next((m for m in _AUTH_PREFERENCE if m in offered), None)
        if mechanism is None:
            raise SendFailure(
                FailureClass.AUTH_NO_COMMON_MECHANISM,
                Step.AUTH,
                "No authentication mechanism in common with the server",
                detail=f"the server offers {' '.join(offered).upper() or 'nothing'}; "
                "smtpdesk speaks PLAIN, LOGIN and CRAM-MD5",
            )
        self._emit(
            Step.AUTH,
            Direction.INFO,
            f"mechanisms offered: {' '.join(offered).upper()}; using {mechanism.upper()}"
            + ("" if self._encrypted else " WITHOUT encryption (security none)"),
        )
        user = username.encode("utf-8")
        password = secret.encode("utf-8")
        if mechanism == "plain":
            blob = base64.b64encode(b"\0" + user + b"\0" + password)
            response = await self._command(
                Step.AUTH, f"AUTH PLAIN {REDACTED}", b"AUTH", b"PLAIN", blob
            )
        elif mechanism == "login":
            response = await self._command(
                Step.AUTH, f"AUTH LOGIN {REDACTED}", b"AUTH", b"LOGIN", base64.b64encode(user)
            )
            if response.code == 334:
                response = await self._command(Step.AUTH, REDACTED, base64.b64encode(password))
        else:
            response = await self._command(Step.AUTH, "AUTH CRAM-MD5", b"AUTH", b"CRAM-MD5")
            if response.code == 334:
                try:
                    challenge = base64.b64decode(response.message.encode("ascii"), validate=True)
                except (UnicodeEncodeError, binascii.Error):
                    raise SendFailure(
                        FailureClass.PROTOCOL,
                        Step.AUTH,
                        "The server's CRAM-MD5 challenge is not base64",
                        detail=f"334 {' '.join(response.message.split())[:200]}; nothing "
                        "was answered to it",
                    ) from None
                digest = hmac.new(password, challenge, hashlib.md5).hexdigest()
                answer = base64.b64encode(user + b" " + digest.encode("ascii"))
                response = await self._command(Step.AUTH, REDACTED, answer)
        if response.code != 235:
            raise self._reply_failure(response, Step.AUTH)

    async def _fetch_token(self, *, refresh: bool) -> str:
        """An access token from the token source, added to the redactor at once."""
        source = self._token_source
        if source is None:
            raise SendFailure(
                FailureClass.OAUTH_SIGN_IN,
                Step.AUTH,
                "No OAuth2 sign-in is available for this login",
                detail="smtp.auth is oauth2 but no token source was given; sign in: "
                "smtpdesk oauth login",
            )
        try:
            token = await (source.refresh() if refresh else source())
        except (SendFailure, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise SendFailure(
                FailureClass.OAUTH_SIGN_IN,
                Step.AUTH,
                "No OAuth2 access token could be obtained",
                detail=self._redact(str(exc) or type(exc).__name__),
            ) from None
        if not isinstance(token, str) or not token:
            raise SendFailure(
                FailureClass.OAUTH_SIGN_IN,
                Step.AUTH,
                "No OAuth2 access token could be obtained",
                detail="the token source gave an empty token",
            )
        self._redact.add(token)
        self._emit(
            Step.AUTH,
            Direction.INFO,
            "OAuth2: a new access token was issued"
            if refresh
            else f"OAuth2: an access token for {self.settings.smtp.username} is ready",
        )
        return token

    async def _auth_xoauth2(self, smtp: aiosmtplib.SMTP, username: str) -> None:
        """AUTH XOAUTH2; on a 535 one refresh and one more try on the same connection."""
        offered = smtp.server_auth_methods
        if "xoauth2" not in offered:
            raise SendFailure(
                FailureClass.AUTH_NO_COMMON_MECHANISM,
                Step.AUTH,
                "The server does not offer XOAUTH2 (OAuth2)",
                detail=f"the server offers {' '.join(offered).upper() or 'nothing'}; OAuth2 "
                "sign-in needs XOAUTH2 (Office 365: smtp.office365.com port 587, STARTTLS); "
                "or choose password authentication",
            )
        self._emit(
            Step.AUTH,
            Direction.INFO,
            f"mechanisms offered: {' '.join(offered).upper()}; using XOAUTH2"
            + ("" if self._encrypted else " WITHOUT encryption (security none)"),
        )
        token = self._token or await self._fetch_token(refresh=False)
        refreshed = False
        while True:
            blob = aiosmtplib.auth.auth_xoauth2_encode(username, token)
            response = await self._command(
                Step.AUTH, f"AUTH XOAUTH2 {REDACTED}", b"AUTH", b"XOAUTH2", blob
            )
            if response.code == 334:
                # The error challenge (base64 JSON): shown decoded, answered empty.
                self._describe_xoauth2_error(response.message)
                response = await self._command(Step.AUTH, "(empty line)", b"")
            if response.code == 235:
                self._token = token
                return
            if response.code != 535 or refreshed:
                break
            refreshed = True
            self._emit(
                Step.AUTH,
                Direction.INFO,
                "the access token was refused: getting a new one and trying once more",
            )
            token = self._token = await self._fetch_token(refresh=True)
        failure = self._reply_failure(response, Step.AUTH)
        if response.code == 535:
            failure = dataclasses.replace(
                failure,
                detail=(f"{failure.detail}; " if failure.detail else "")
                + "the access token was refused"
                + (" even after a refresh" if refreshed else "")
                + ": sign in again: smtpdesk oauth login",
            )
        raise failure

    def _describe_xoauth2_error(self, challenge: str) -> None:
        try:
            text = base64.b64decode(challenge.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return
        if text.isprintable():
            self._emit(Step.AUTH, Direction.INFO, f"the server's XOAUTH2 error: {text[:300]}")

    # --- send ------------------------------------------------------------------------

    def size_limit(self) -> int:
        """The server's EHLO SIZE limit in bytes (0: none announced)."""
        value = self.extensions.get("size", "").strip()
        # ASCII digits only, and few of them: str.isdigit() accepts "²" and a
        # server may send 5,000 digits, and int() raises ValueError on both.
        return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else 0

    async def send(self, outgoing: Outgoing) -> SendResult:
        """MAIL FROM, RCPT TO each recipient, DATA; RSET after a refused transaction."""
        start = self.clock.elapsed_ms()
        smtp = self._client(Step.MAIL)
        data = outgoing.as_bytes()
        limit = self.size_limit()
        if limit and len(data) > limit:
            raise SendFailure(
                FailureClass.MESSAGE_TOO_BIG,
                Step.MAIL,
                "The message is larger than the server accepts",
                detail=(
                    f"the message is {_sized(len(data))}; the server's EHLO SIZE limit "
                    f"is {_sized(limit)}; nothing was uploaded"
                ),
            )
        options: list[str] = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        eight_bit = not data.isascii()
        if eight_bit and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        elif eight_bit and not outgoing.smtputf8:
            # RFC 6152: 8-bit data only to a server that announced 8BITMIME. Never
            # sent anyway (a relay may garble or bounce it): refused before MAIL.
            raise SendFailure(
                FailureClass.MESSAGE_REJECTED,
                Step.MAIL,
                "The message has 8-bit content and the server does not offer 8BITMIME",
                detail="its EHLO reply has no 8BITMIME; the message must be 7-bit "
                "(quoted-printable or base64) for this server; nothing was sent",
            )
        encoding = "ascii"
        if outgoing.smtputf8:
            if not smtp.supports_extension("smtputf8"):
                raise SendFailure(
                    FailureClass.SMTPUTF8_NOT_OFFERED,
                    Step.MAIL,
                    "An address needs SMTPUTF8, which the server does not offer",
                    detail="an address has a non-ASCII local part: "
                    + ", ".join(
                        a for a in (outgoing.sender, *outgoing.recipients) if not a.isascii()
                    ),
                )
            options.append("SMTPUTF8")
            encoding = "utf-8"
        try:
            return await self._transaction(outgoing, data, options, encoding, start)
        except SendFailure as failure:
            await self._after_failure(failure)
            raise

    async def _transaction(
        self, outgoing: Outgoing, data: bytes, options: list[str], encoding: str, start: float
    ) -> SendResult:
        mail_args = [f"FROM:<{outgoing.sender}>".encode(encoding)]
        mail_args += [option.encode("ascii") for option in options]
        shown = " ".join([f"MAIL FROM:<{outgoing.sender}>", *options])
        response = await self._command(Step.MAIL, shown, b"MAIL", *mail_args)
        if response.code != 250:
            raise self._reply_failure(response, Step.MAIL)

        accepted: list[str] = []
        refused: dict[str, str] = {}
        first_refusal: SMTPResponse | None = None
        for recipient in outgoing.recipients:
            response = await self._command(
                Step.RCPT, f"RCPT TO:<{recipient}>", b"RCPT", f"TO:<{recipient}>".encode(encoding)
            )
            if response.code in {250, 251}:
                accepted.append(recipient)
                continue
            refused[recipient] = self._redact(
                f"{response.code} {' '.join(response.message.split())}"
            )
            first_refusal = first_refusal or response
            if response.code == 421:
                # The server is closing the session: no DATA on it, the whole
                # message is a temporary failure (a batch retries it later).
                raise self._reply_failure(response, Step.RCPT)
        if not accepted:
            assert first_refusal is not None
            failure = self._reply_failure(first_refusal, Step.RCPT)
            if len(refused) > 1:
                listed = "; ".join(f"{r}: {reply}" for r, reply in refused.items())
                failure = SendFailure(
                    failure.failure_class,
                    Step.RCPT,
                    "Every recipient was rejected"
                    if failure.failure_class is FailureClass.RECIPIENT_REJECTED
                    else failure.title,
                    detail=listed,
                    reply_code=failure.reply_code,
                    reply_text=failure.reply_text,
                    retryable=failure.retryable,
                )
            raise failure
        if refused:
            self._emit(
                Step.RCPT,
                Direction.INFO,
                f"{len(refused)} of {len(outgoing.recipients)} recipients refused; "
                "sending to the others",
            )

        response = await self._command(Step.DATA, "DATA", b"DATA")
        if response.code != 354:
            raise self._reply_failure(response, Step.DATA)
        smtp = self._client(Step.DATA)
        protocol = smtp.protocol
        if protocol is None:
            raise self._client_gone()
        wire = dot_stuff(data)

        async def upload() -> SMTPResponse:
            # Written and read with no await in between, as aiosmtplib does in
            # execute_data_command, so the reply cannot arrive unobserved.
            protocol.write(wire)
            return await protocol.read_response(timeout=self.settings.timeout)

        self._emit(
            Step.DATA,
            Direction.INFO,
            f"{_sized(len(data))} sent, waiting for the server's reply",
        )
        response = _clean(await self._run(Step.DATA, upload()))
        self._emit_reply(Step.DATA, response.code, response.message)
        if response.code != 250:
            raise self._reply_failure(response, Step.DATA)
        reply = self._redact(f"{response.code} {' '.join(response.message.split())}")
        queue_id = parse_queue_id(response.message)
        if queue_id:
            self._emit(Step.DATA, Direction.INFO, f"queue id: {queue_id}")
        return SendResult(
            message_id=outgoing.message_id,
            queue_id=queue_id,
            reply=reply,
            accepted=tuple(accepted),
            refused=refused,
            elapsed_ms=self.clock.elapsed_ms() - start,
        )

    def _client_gone(self) -> SendFailure:
        return SendFailure(
            FailureClass.DISCONNECTED,
            Step.DATA,
            "The connection to the server is closed",
            retryable=True,
        )

    async def _after_failure(self, failure: SendFailure) -> None:
        """Keep the session usable after a refused transaction, else drop it."""
        code = failure.reply_code
        if code is None or code == 421 or not 400 <= code <= 599:
            # Timeout, disconnect, "closing", or a reply out of step (a 2xx/3xx
            # where a refusal or another code belonged): the session is gone
            # or in an unknown state, and RSET would be read against it.
            self.abort()
            return
        try:
            response = await self._command(Step.MAIL, "RSET", b"RSET")
        except SendFailure:
            self.abort()
            return
        if response.code != 250:
            self.abort()

    # --- close -----------------------------------------------------------------------

    async def close(self) -> None:
        """QUIT politely (short timeout), then close. Never raises."""
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            self.abort()
            return
        self._emit(Step.QUIT, Direction.OUT, "QUIT")
        try:
            response = await self._guarded(
                smtp.execute_command(b"QUIT"), min(self.settings.timeout, 5.0)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._emit(
                Step.QUIT, Direction.INFO, f"no reply to QUIT ({type(exc).__name__}); closed"
            )
        else:
            self._emit_reply(Step.QUIT, response.code, server_text(response.message))
        self.abort()

    def abort(self) -> None:
        """Close the socket at once: no QUIT, no waiting, no TLS close_notify."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            transport = smtp.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            smtp.close()
        # The transport owns the socket once it exists; closing the Python
        # object again is harmless and covers a handshake that never finished.
        sock, self._sock = self._sock, None
        if sock is not None and sock.fileno() != -1:
            sock.close()


__all__ = ["SmtpTransport", "TlsInfo", "describe_certificate", "dot_stuff", "parse_queue_id"]
