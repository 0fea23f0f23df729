"""The built-in sandbox: a local mail sink for the demo, the CLI and the tests.

One ``Sandbox`` runs three listeners on loopback, all in the running event loop:

- a submission listener (STARTTLS required, AUTH only after STARTTLS), the
  ``sandbox`` preset's port 8587 in the foreground command;
- an implicit-TLS listener (AUTH offered at once: aiosmtpd does not count
  implicit TLS as TLS, so ``auth_require_tls`` is off there), port 8465;
- an HTTP relay endpoint implementing DESIGN.md section 5b (``POST /send``
  with ``Authorization: Bearer <key>``), port 8025.

A self-signed certificate (CN and SAN 127.0.0.1, ::1, localhost) is made at
start and written to ``ca_file`` so that clients verify it through the
settings' trusted certificate file. Every accepted message is kept in
``messages`` and written to the folder as ``<n>-<queue id>.eml``.

    async with Sandbox(tmp_path) as sandbox:
        settings = sandbox.settings("starttls")
        ...
        assert sandbox.messages[0].recipients == ("demo@smtpdesk.test",)

``faults`` makes the sandbox answer chosen replies (see ``Faults``). aiosmtpd's
log records are forwarded to the ``smtpdesk.sandbox.smtp`` logger (never to
stderr on their own); AUTH payloads never reach any log.

No Textual import: this is a service used by the CLI, the TUI and the tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import hmac
import ipaddress
import json
import logging
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from transports.addresses import normalize_address
from transports.settings import Settings

logger = logging.getLogger("smtpdesk.sandbox")
"""The sandbox's own records (listening, each captured message)."""

SMTP_LOGGER = "smtpdesk.sandbox.smtp"
"""aiosmtpd's records (its ``mail.log`` logger) are forwarded here."""

# The demo password must not occur in ordinary text: transports redact the
# password wherever it appears, and "demo" would blank out "demo@smtpdesk.test".
DEFAULT_ACCOUNTS: dict[str, str] = {"demo@smtpdesk.test": "sandbox-pass"}
DEFAULT_HTTP_KEY = "demo-key"
DEFAULT_SUBMISSION_PORT = 8587
DEFAULT_TLS_PORT = 8465
DEFAULT_HTTP_PORT = 8025
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024
"""Announced as SMTP SIZE; the HTTP relay accepts the base64 of it plus the envelope."""

SERVER_NAME = "sandbox.smtpdesk.test"

Via = Literal["starttls", "tls", "http"]
Stage = Literal["mail", "rcpt", "data", "http"]

FaultHook = Callable[[Stage, str, int], "str | None"]
"""``(stage, address, attempt) -> reply or None``.

``stage`` is ``"mail"`` (address: the sender), ``"rcpt"`` (address: that
recipient), ``"data"`` (address: the sender) or ``"http"`` (address: the
envelope sender of a relay request). ``attempt`` counts the times this stage
has seen this address in this sandbox, from 1. Return ``None`` to go on
normally, or a reply: an SMTP reply such as ``"451 4.3.0 try later"`` or, for
``"http"``, a status and reason such as ``"503 relay busy"`` (a 429 gets a
``Retry-After: 1`` header).
"""


@dataclass(frozen=True)
class Fault:
    """One scripted answer: at ``stage`` for ``address`` (any when empty), ``times`` times."""

    stage: Stage
    reply: str
    address: str = ""
    times: int | None = None
    """How many attempts get the reply (``None``: every attempt)."""


class Faults:
    """A ready-made fault hook from a list of rules, the first matching rule wins.

    ``Faults(Fault("rcpt", "451 4.3.0 try later", "b@x.test", times=2))``
    fails that recipient twice, then accepts it.
    """

    def __init__(self, *rules: Fault) -> None:
        self.rules = list(rules)

    def __call__(self, stage: Stage, address: str, attempt: int) -> str | None:
        for rule in self.rules:
            if rule.stage != stage:
                continue
            if rule.address and rule.address.lower() != address.lower():
                continue
            if rule.times is not None and attempt > rule.times:
                continue
            return rule.reply
        return None


@dataclass(frozen=True)
class CapturedMessage:
    """A message the sandbox accepted."""

    sender: str
    """Envelope sender (MAIL FROM or the relay envelope's ``from``)."""
    recipients: tuple[str, ...]
    """Envelope recipients, blind copies included."""
    data: bytes
    """The message exactly as received (RFC 5322, CRLF line endings)."""
    path: Path
    """The ``.eml`` file it was written to."""
    via: Via
    queue_id: str
    account: str
    """The login (SMTP) or ``"http-key"`` that sent it."""


class _ForwardMailLog(logging.Handler):
    """Moves aiosmtpd's ``mail.log`` records to ``smtpdesk.sandbox.smtp``.

    aiosmtpd already masks ``AUTH <mech> <payload>`` lines; its per-login
    "Session.login_data is deprecated" warning is dropped as noise.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if "login_data is deprecated" in str(record.msg):
            return
        target = logging.getLogger(SMTP_LOGGER)
        if target.isEnabledFor(record.levelno):
            record.name = SMTP_LOGGER
            target.handle(record)


def _route_aiosmtpd_logging() -> None:
    """Forward aiosmtpd's log records once per process (idempotent)."""
    mail_log = logging.getLogger("mail.log")
    if not any(isinstance(h, _ForwardMailLog) for h in mail_log.handlers):
        mail_log.addHandler(_ForwardMailLog())
        mail_log.propagate = False
    sandbox_log = logging.getLogger("smtpdesk.sandbox")
    if not any(isinstance(h, logging.NullHandler) for h in sandbox_log.handlers):
        # A library-style logger: silent unless the app attaches a handler.
        sandbox_log.addHandler(logging.NullHandler())


def make_certificate(common_name: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A self-signed server certificate and its key, both PEM.

    Valid for 127.0.0.1, ::1 and localhost, one day back to thirty days ahead.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtpdesk sandbox"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server TLS context; the key touches disk only in a private temp dir, briefly."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="smtpdesk-sandbox-") as tmp:
        cert_path = Path(tmp) / "cert.pem"
        key_path = Path(tmp) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def _new_queue_id() -> str:
    return secrets.token_hex(5).upper()


class _SmtpHandler:
    """aiosmtpd handler: AUTH check, faults, capture."""

    def __init__(self, sandbox: Sandbox, via: Via) -> None:
        self.sandbox = sandbox
        self.via: Via = via

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        fault = self.sandbox._fault("mail", address)
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self.sandbox._fault("rcpt", address)
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        sender = envelope.mail_from or ""
        fault = self.sandbox._fault("data", sender)
        if fault:
            return fault
        data = envelope.original_content or b""
        captured = self.sandbox._capture(
            sender=sender,
            recipients=tuple(envelope.rcpt_tos),
            data=data,
            via=self.via,
            account=str(session.auth_data or ""),
        )
        return f"250 2.0.0 OK: queued as {captured.queue_id}"


class _HttpError(Exception):
    """An HTTP error reply of the relay endpoint."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

_MAX_HEADER_BYTES = 16 * 1024
_DRAIN_LIMIT = 256 * 1024 * 1024
"""Up to this much of an oversized body is read and dropped so the client sees the 413."""


class Sandbox:
    """Local SMTP (STARTTLS and implicit TLS) and HTTP relay sink; see the module docs."""

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        submission_port: int = 0,
        tls_port: int = 0,
        http_port: int = 0,
        accounts: dict[str, str] | None = None,
        http_key: str = DEFAULT_HTTP_KEY,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self.submission_port = submission_port
        self.tls_port = tls_port
        self.http_port = http_port
        self.accounts = dict(DEFAULT_ACCOUNTS if accounts is None else accounts)
        if not self.accounts:
            raise ValueError("accounts: at least one account is required")
        self.http_key = http_key
        self.max_message_size = max_message_size
        self.messages: list[CapturedMessage] = []
        self.on_message: Callable[[CapturedMessage], None] | None = None
        """Called with each captured message (the CLI prints it). Must not block."""
        self.faults: FaultHook | None = None
        """Optional hook that makes the sandbox answer chosen replies (``Faults``)."""
        self.ca_file = self.folder / "sandbox-cert.pem"
        """The sandbox certificate (PEM), to trust through ``smtp.ca_file``."""
        self.http_requests = 0
        """Relay requests whose head arrived (any path, any outcome)."""
        self._attempts: dict[tuple[str, str], int] = {}
        self._servers: list[asyncio.Server] = []
        self._protocols: set[SMTP] = set()
        self._http_tasks: set[asyncio.Task[None]] = set()
        self._context: ssl.SSLContext | None = None
        self._counter = 0

    @property
    def username(self) -> str:
        """The default (first) account's login."""
        return next(iter(self.accounts))

    @property
    def password(self) -> str:
        """The default (first) account's password."""
        return self.accounts[self.username]

    @property
    def started(self) -> bool:
        return bool(self._servers)

    def __repr__(self) -> str:
        return (
            f"<Sandbox {self.host} submission={self.submission_port} tls={self.tls_port} "
            f"http={self.http_port} messages={len(self.messages)}>"
        )

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        """Make the certificate and start the three listeners in the running loop."""
        if self._servers:
            raise RuntimeError("the sandbox is already running")
        _route_aiosmtpd_logging()
        self.folder.mkdir(parents=True, exist_ok=True)
        cert_pem, key_pem = make_certificate()
        self.ca_file.write_bytes(cert_pem)
        self._context = _server_context(cert_pem, key_pem)
        loop = asyncio.get_running_loop()
        try:
            submission = await loop.create_server(
                lambda: self._smtp("starttls"), self.host, self.submission_port
            )
            self._servers.append(submission)
            self.submission_port = _port(submission)
            implicit = await loop.create_server(
                lambda: self._smtp("tls"), self.host, self.tls_port, ssl=self._context
            )
            self._servers.append(implicit)
            self.tls_port = _port(implicit)
            relay = await asyncio.start_server(self._serve_http, self.host, self.http_port)
            self._servers.append(relay)
            self.http_port = _port(relay)
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "sandbox listening on %s: submission %d (STARTTLS), TLS %d, HTTP %d",
            self.host,
            self.submission_port,
            self.tls_port,
            self.http_port,
        )

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for protocol in list(self._protocols):
            if protocol.transport is not None:
                protocol.transport.close()
        handlers = [
            p._handler_coroutine for p in self._protocols if p._handler_coroutine is not None
        ]
        for task in [*handlers, *self._http_tasks]:
            task.cancel()
        pending = [*handlers, *self._http_tasks]
        if pending:
            await asyncio.wait(pending, timeout=2)
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)
        self._protocols.clear()
        self._http_tasks.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- settings pointed at the sandbox ------------------------------------

    def settings(
        self, mode: Literal["starttls", "tls", "http"] = "starttls", *, timeout: float = 20
    ) -> Settings:
        """Valid settings for this sandbox (``preset = "sandbox"``, trusting ``ca_file``).

        Available once started (and still after ``stop()``, e.g. to test a refused
        connection).
        """
        if not (self.submission_port and self.tls_port and self.http_port):
            raise RuntimeError("start the sandbox first: its ports are not known yet")
        if mode == "http":
            data: dict[str, Any] = {
                "protocol": "http",
                "preset": "sandbox",
                "reply_to": self.username,
                "timeout": timeout,
                "http": {"url": f"http://{_url_host(self.host)}:{self.http_port}/send"},
            }
        elif mode in ("starttls", "tls"):
            data = {
                "protocol": "smtp",
                "preset": "sandbox",
                "timeout": timeout,
                "smtp": {
                    "host": self.host,
                    "port": self.submission_port if mode == "starttls" else self.tls_port,
                    "security": mode,
                    "username": self.username,
                    "ca_file": str(self.ca_file),
                },
            }
        else:
            raise ValueError(f"mode: {mode!r} is not one of starttls, tls, http")
        return Settings.model_validate(data)

    # -- internals ----------------------------------------------------------

    def _smtp(self, via: Via) -> SMTP:
        # Forget finished sessions (aiosmtpd clears ``transport`` on connection_lost),
        # so a long-running foreground sandbox does not keep every session.
        self._protocols = {
            p
            for p in self._protocols
            if p.transport is not None
            or (p._handler_coroutine is not None and not p._handler_coroutine.done())
        }
        starttls = via == "starttls"
        protocol = SMTP(
            _SmtpHandler(self, via),
            hostname=SERVER_NAME,
            ident="smtpdesk sandbox",
            data_size_limit=self.max_message_size,
            enable_SMTPUTF8=True,
            tls_context=self._context if starttls else None,
            require_starttls=starttls,
            # Implicit TLS is not "TLS" to aiosmtpd: AUTH must be allowed there.
            auth_require_tls=starttls,
            authenticator=self._authenticate,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.add(protocol)
        return protocol

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        expected = self.accounts.get(login)
        given = auth_data.password
        if expected is not None and hmac.compare_digest(expected.encode("utf-8"), given):
            # auth_data is the login only: aiosmtpd logs the AuthResult's repr.
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def _fault(self, stage: Stage, address: str) -> str | None:
        key = (stage, address.lower())
        self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
        if self.faults is None:
            return None
        return self.faults(stage, address, attempt)

    def _capture(
        self, *, sender: str, recipients: tuple[str, ...], data: bytes, via: Via, account: str
    ) -> CapturedMessage:
        self._counter += 1
        queue_id = _new_queue_id()
        path = self.folder / f"{self._counter:04d}-{queue_id}.eml"
        path.write_bytes(data)
        captured = CapturedMessage(
            sender=sender,
            recipients=recipients,
            data=data,
            path=path,
            via=via,
            queue_id=queue_id,
            account=account,
        )
        self.messages.append(captured)
        logger.info(
            "captured %s via %s from %s to %s (%d bytes) in %s",
            queue_id,
            via,
            sender,
            ", ".join(recipients),
            len(data),
            path.name,
        )
        if self.on_message is not None:
            self.on_message(captured)
        return captured

    # -- the HTTP relay endpoint ---------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._http_tasks.add(task)
        try:
            try:
                await self._handle_http(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                if task is not None:
                    self._http_tasks.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        except asyncio.CancelledError:
            # stop() cancels open requests; a handler task that ends cancelled
            # makes asyncio log an error, so it ends quietly instead.
            pass

    async def _handle_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        except asyncio.LimitOverrunError:
            await _respond(writer, 431, {"error": "request headers too large"})
            return
        except TimeoutError:
            await _respond(writer, 408, {"error": "request timed out"})
            return
        self.http_requests += 1
        if len(head) > _MAX_HEADER_BYTES:
            await _respond(writer, 431, {"error": "request headers too large"})
            return
        try:
            method, target, headers = _parse_head(head)
            status, reply, extra = await self._relay(method, target, headers, reader)
        except _HttpError as error:
            await _respond(writer, error.status, {"error": error.message}, error.headers)
            return
        await _respond(writer, status, reply, extra)

    async def _relay(
        self, method: str, target: str, headers: dict[str, str], reader: asyncio.StreamReader
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        path = target.split("?", 1)[0]
        if path != "/send":
            raise _HttpError(404, f"no such endpoint {path!r}: POST /send")
        if method != "POST":
            raise _HttpError(405, "use POST", {"Allow": "POST"})
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _HttpError(411, "send a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            raise _HttpError(411, "Content-Length required") from None
        if length < 0:
            raise _HttpError(400, "bad Content-Length")
        limit = self.max_message_size * 4 // 3 + 64 * 1024
        if length > limit:
            await _drain(reader, length)
            raise _HttpError(413, f"request body of {length} bytes exceeds the limit of {limit}")
        body = await asyncio.wait_for(reader.readexactly(length), timeout=60)
        authorization = headers.get("authorization", "")
        scheme, _, key = authorization.partition(" ")
        expected = f"{self.http_key}".encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), expected):
            raise _HttpError(
                401, "missing or wrong API key", {"WWW-Authenticate": 'Bearer realm="sandbox"'}
            )
        sender, recipients, data = _parse_relay_body(body)
        fault = self._fault("http", sender)
        if fault:
            code_text, _, reason = fault.partition(" ")
            try:
                code = int(code_text)
            except ValueError:
                code = 500
            extra = {"Retry-After": "1"} if code == 429 else {}
            raise _HttpError(code, reason or _REASONS.get(code, "error"), extra)
        captured = self._capture(
            sender=sender, recipients=recipients, data=data, via="http", account="http-key"
        )
        return 200, {"id": captured.queue_id, "accepted": list(recipients)}, {}


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        raise _HttpError(400, "bad request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _HttpError(400, "bad request line")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _HttpError(400, "bad header line")
        headers[name.lower()] = value.strip()
    return method, target, headers


def _parse_relay_body(body: bytes) -> tuple[str, tuple[str, ...], bytes]:
    """Validate the section 5b JSON body: (sender, recipients, message bytes)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _HttpError(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise _HttpError(400, "the body must be a JSON object")
    envelope = document.get("envelope")
    message = document.get("message")
    if not isinstance(envelope, dict):
        raise _HttpError(400, "envelope: must be an object with 'from' and 'to'")
    sender = envelope.get("from")
    recipients = envelope.get("to")
    if not isinstance(sender, str):
        raise _HttpError(400, "envelope.from: must be a string")
    if not isinstance(recipients, list) or not recipients:
        raise _HttpError(400, "envelope.to: must be a non-empty list of addresses")
    checked: list[str] = []
    for index, value in enumerate([sender, *recipients]):
        name = "envelope.from" if index == 0 else f"envelope.to[{index - 1}]"
        if not isinstance(value, str):
            raise _HttpError(400, f"{name}: must be a string")
        try:
            checked.append(normalize_address(value))
        except ValueError as exc:
            raise _HttpError(400, f"{name}: {exc}") from None
    if not isinstance(message, str):
        raise _HttpError(400, "message: must be the base64 of the RFC 5322 message")
    try:
        data = base64.b64decode(message, validate=True)
    except (binascii.Error, ValueError):
        raise _HttpError(400, "message: is not valid base64") from None
    if not data:
        raise _HttpError(400, "message: is empty")
    return checked[0], tuple(checked[1:]), data


async def _drain(reader: asyncio.StreamReader, length: int) -> None:
    """Read and drop up to ``length`` bytes (bounded), so the client can read our reply."""
    remaining = min(length, _DRAIN_LIMIT)
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        while remaining > 0:
            chunk = await asyncio.wait_for(reader.read(min(remaining, 1 << 16)), timeout=10)
            if not chunk:
                return
            remaining -= len(chunk)


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    payload = json.dumps(body).encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        "Server: smtpdesk-sandbox",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()


async def serve_forever(
    folder: Path,
    *,
    host: str = "127.0.0.1",
    submission_port: int = DEFAULT_SUBMISSION_PORT,
    tls_port: int = DEFAULT_TLS_PORT,
    http_port: int = DEFAULT_HTTP_PORT,
    print: Callable[[str], None] = print,  # noqa: A002 - injectable output, like the builtin
) -> None:
    """Run the sandbox in the foreground until cancelled (``smtpdesk sandbox``).

    Prints where it listens, how to log in and each message it captures.
    """
    sandbox = Sandbox(
        folder,
        host=host,
        submission_port=submission_port,
        tls_port=tls_port,
        http_port=http_port,
    )
    sandbox.on_message = lambda m: print(describe_message(m))
    async with sandbox:
        for line in describe_sandbox(sandbox):
            print(line)
        await asyncio.Event().wait()


def describe_sandbox(sandbox: Sandbox) -> list[str]:
    """Where the sandbox listens and how to log in, one line each; Ctrl+C hint last.

    Only the public demo password and key are shown; configured ones never are.
    """
    host = _url_host(sandbox.host)
    return [
        f"smtpdesk sandbox: messages are saved in {sandbox.folder}",
        f"  SMTP submission  {host}:{sandbox.submission_port}  (STARTTLS required, then AUTH)",
        f"  SMTP implicit TLS {host}:{sandbox.tls_port}",
        f"  HTTP relay       http://{host}:{sandbox.http_port}/send  (Bearer key)",
        _login_line(sandbox),
        f"  trust the certificate with ca_file = {sandbox.ca_file}",
        "Press Ctrl+C to stop.",
    ]


def _login_line(sandbox: Sandbox) -> str:
    """The demo credentials are public (the preset's guidance states them); others are not."""
    password = (
        repr(sandbox.password)
        if DEFAULT_ACCOUNTS.get(sandbox.username) == sandbox.password
        else "(as configured)"
    )
    key = repr(sandbox.http_key) if sandbox.http_key == DEFAULT_HTTP_KEY else "(as configured)"
    return f"  login {sandbox.username} / password {password}; relay key {key}"


def describe_message(message: CapturedMessage) -> str:
    """One line for a captured message: queue id, route, envelope, size, file."""
    return (
        f"captured {message.queue_id} via {message.via}: {message.sender} -> "
        f"{', '.join(message.recipients)} ({len(message.data)} bytes) {message.path}"
    )


__all__ = [
    "CapturedMessage",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_SUBMISSION_PORT",
    "DEFAULT_TLS_PORT",
    "Fault",
    "FaultHook",
    "Faults",
    "Sandbox",
    "Stage",
    "Via",
    "describe_message",
    "describe_sandbox",
    "make_certificate",
    "serve_forever",
]
