"""Test SMTP servers on loopback (aiosmtpd with TLS and AUTH, and scripted fakes).

Fixtures (all servers listen on 127.0.0.1 port 0, started in the test's own
event loop; FACTS.md: aiosmtpd's ``Controller(port=0)`` fails):

- ``certs`` (session): a trustme CA and server certificates made from it (good,
  wrong host name, expired), one from a CA nobody trusts, and a self-signed one
  made with cryptography; each with PEM files on disk.
- ``smtp_server``: a factory for real aiosmtpd servers: ``starttls`` (STARTTLS +
  AUTH, ``auth_require_tls=True``), ``tls`` (implicit TLS, AUTH with
  ``auth_require_tls=False`` since aiosmtpd does not count implicit TLS as TLS),
  ``plain``; configurable accounts, SIZE limit, refused recipients; a recording
  handler keeps every message and every MAIL/RCPT/DATA/RSET/AUTH it saw.
- ``scripted_server``: a raw asyncio server that answers from a script, for
  provider reply texts, 421, 454, garbage, a disconnect in the middle of DATA,
  a server without STARTTLS (it can also do STARTTLS itself).
- ``tarpit``: accepts connections and never says a word.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP as AioSmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from transports.settings import Settings

LOOPBACK = "127.0.0.1"


class _DropDeprecatedLoginData(logging.Filter):
    """aiosmtpd 1.4 logs "Session.login_data is deprecated" on every successful
    login, from its own AUTH code (FACTS.md); it is noise, not our concern."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropDeprecatedLoginData())


# --- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerCert:
    """A server certificate chain and key on disk."""

    name: str
    chain_pem: Path
    key_pem: Path

    def context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.chain_pem), str(self.key_pem))
        return context


@dataclass(frozen=True)
class Certs:
    """Every certificate the tests need."""

    ca_pem: Path
    """The trusted test CA (give it to ``smtp.ca_file``)."""
    good: ServerCert
    wrong_host: ServerCert
    expired: ServerCert
    untrusted: ServerCert
    self_signed: ServerCert


def _leaf(ca: trustme.CA, folder: Path, name: str, *hosts: str, **kwargs: Any) -> ServerCert:
    leaf = ca.issue_cert(*hosts, **kwargs)
    chain = folder / f"{name}-chain.pem"
    key = folder / f"{name}-key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return ServerCert(name, chain, key)


def make_self_signed(folder: Path, host: str = LOOPBACK) -> ServerCert:
    """A self-signed certificate for ``host`` (and localhost), made with cryptography."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed.smtpdesk.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    chain = folder / "self-signed-chain.pem"
    key_file = folder / "self-signed-key.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ServerCert("self-signed", chain, key_file)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """The test CA and the server certificates (made once per session)."""
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_pem = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    now = datetime.datetime.now(datetime.UTC)
    return Certs(
        ca_pem=ca_pem,
        good=_leaf(ca, folder, "good", LOOPBACK, "localhost", "::1"),
        wrong_host=_leaf(ca, folder, "wrong-host", "mail.wrong-host.test"),
        expired=_leaf(
            ca,
            folder,
            "expired",
            LOOPBACK,
            not_before=now - datetime.timedelta(days=60),
            not_after=now - datetime.timedelta(days=1),
        ),
        untrusted=_leaf(trustme.CA(), folder, "untrusted", LOOPBACK),
        self_signed=make_self_signed(folder),
    )


# --- aiosmtpd ------------------------------------------------------------------------


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps everything it saw."""

    accounts: dict[str, str] = field(default_factory=dict)
    refuse_recipients: dict[str, str] = field(default_factory=dict)
    """address → reply for recipients to refuse (e.g. ``550 5.1.1 no such user``)."""
    messages: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    """MAIL, RCPT, DATA, RSET and AUTH (with the mechanism and username only)."""
    _next_id: int = 0

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self,
        server: AioSmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.commands.append(f"MAIL {address}")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self,
        server: AioSmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.commands.append(f"RCPT {address}")
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: AioSmtpServer, session: Session, envelope: Envelope
    ) -> str:
        self.commands.append("DATA")
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                mail_options=list(envelope.mail_options),
            )
        )
        self._next_id += 1
        return f"250 2.0.0 OK: queued as Q{self._next_id:04d}"

    async def handle_RSET(  # noqa: N802 - aiosmtpd hook name
        self, server: AioSmtpServer, session: Session, envelope: Envelope
    ) -> str:
        self.commands.append("RSET")
        return "250 2.0.0 OK"

    def authenticator(
        self,
        server: AioSmtpServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """Checks ``accounts``; records the attempt without the password."""
        if not isinstance(auth_data, LoginPassword):
            self.commands.append(f"AUTH {mechanism}")
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        self.commands.append(f"AUTH {mechanism} {login}")
        ok = self.accounts.get(login) == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    @property
    def attempted_auth(self) -> list[str]:
        return [c for c in self.commands if c.startswith("AUTH")]


@dataclass
class RunningSmtp:
    """A started aiosmtpd server."""

    port: int
    handler: RecordingHandler
    mode: str

    def settings(
        self,
        *,
        username: str = "",
        from_address: str = "",
        security: str | None = None,
        ca_file: Path | str = "",
        verify_tls: bool = True,
        timeout: float = 2,
        **top: Any,
    ) -> Settings:
        """Settings pointed at this server."""
        mode = security or {"plain": "none"}.get(self.mode, self.mode)
        smtp: dict[str, Any] = {
            "host": LOOPBACK,
            "port": self.port,
            "security": mode,
            "username": username,
            "from_address": from_address,
            "verify_tls": verify_tls,
            "ca_file": str(ca_file),
        }
        return Settings.model_validate({"timeout": timeout, "smtp": smtp, **top})


SmtpServerFactory = Callable[..., Any]


@pytest.fixture
async def smtp_server(certs: Certs) -> AsyncIterator[SmtpServerFactory]:
    """Factory: ``await smtp_server(mode="starttls", cert=..., accounts=..., ...)``."""
    servers: list[asyncio.Server] = []
    protocols: list[AioSmtpServer] = []

    async def start(
        mode: str = "starttls",
        *,
        cert: ServerCert | None = None,
        accounts: dict[str, str] | None = None,
        data_size_limit: int | None = 10 * 1024 * 1024,
        refuse_recipients: dict[str, str] | None = None,
        auth: bool = True,
        smtputf8: bool = False,
    ) -> RunningSmtp:
        handler = RecordingHandler(
            accounts=dict(accounts or {}), refuse_recipients=dict(refuse_recipients or {})
        )
        context = (cert or certs.good).context() if mode != "plain" else None
        loop = asyncio.get_running_loop()

        def factory() -> AioSmtpServer:
            server = AioSmtpServer(
                handler,
                hostname="mx.smtpdesk.test",
                ident="smtpdesk test server",
                data_size_limit=data_size_limit,
                enable_SMTPUTF8=smtputf8,
                tls_context=context if mode == "starttls" else None,
                require_starttls=mode == "starttls",
                auth_require_tls=mode == "starttls",
                authenticator=handler.authenticator if auth else None,
                auth_exclude_mechanism=None if auth else ["LOGIN", "PLAIN"],
                loop=loop,
            )
            protocols.append(server)
            return server

        server = await loop.create_server(
            factory, LOOPBACK, 0, ssl=context if mode == "tls" else None
        )
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return RunningSmtp(port=port, handler=handler, mode=mode)

    yield start
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    for server in servers:
        server.close()
        await server.wait_closed()
    await asyncio.sleep(0)


# --- scripted fake server ----------------------------------------------------------------

CLOSE = "<close>"
"""Script reply: close the connection instead of answering."""
SILENT = "<silent>"
"""Script reply: never answer."""


@dataclass
class Script:
    """What a scripted server answers. A reply may be several lines (``\\n``).

    ``replies`` is keyed by command verb (EHLO, HELO, STARTTLS, AUTH, MAIL,
    RCPT, DATA, RSET, QUIT), ``AUTH+`` for an AUTH continuation line and
    ``.`` for the end of the message. A list is used in order, its last
    entry repeated.
    """

    greeting: str = "220 scripted.smtpdesk.test ESMTP ready"
    replies: dict[str, str | list[str]] = field(default_factory=dict)
    ehlo: str = "250-scripted.smtpdesk.test\n250-AUTH PLAIN LOGIN\n250-SIZE 10485760\n250 8BITMIME"
    close_in_data: bool = False
    """Close the connection as soon as the first bytes of the message arrive."""
    tls: ssl.SSLContext | None = None
    """Server context used after a ``220`` reply to STARTTLS."""
    drip: dict[str, float] = field(default_factory=dict)
    """Seconds between bytes of the reply to a verb (``GREETING`` too): a dripping server."""

    def reply(self, key: str, counter: dict[str, int]) -> str:
        defaults = {
            "EHLO": self.ehlo,
            "HELO": "250 scripted.smtpdesk.test",
            "AUTH": "235 2.7.0 Authentication successful",
            "AUTH+": "235 2.7.0 Authentication successful",
            "MAIL": "250 2.1.0 OK",
            "RCPT": "250 2.1.5 OK",
            "DATA": "354 End data with <CR><LF>.<CR><LF>",
            ".": "250 2.0.0 OK: queued as SCRIPTED1",
            "RSET": "250 2.0.0 OK",
            "QUIT": "221 2.0.0 Bye",
            "NOOP": "250 OK",
        }
        value = self.replies.get(key, defaults.get(key, "502 5.5.2 command not implemented"))
        if isinstance(value, list):
            index = counter.get(key, 0)
            counter[key] = index + 1
            return value[min(index, len(value) - 1)]
        return value


@dataclass(kw_only=True)
class ServerLog:
    """What a fake server saw: shared by the scripted and the hostile servers."""

    lines: list[bytes] = field(default_factory=list)
    """Every command line received (raw, including AUTH payloads)."""
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)

    def verbs(self) -> list[str]:
        return [
            line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace") for line in self.lines
        ]


@dataclass
class RunningScript(ServerLog):
    """A started scripted server and what it received."""

    port: int
    script: Script

    def settings(
        self,
        *,
        username: str = "me@example.test",
        security: str = "none",
        timeout: float = 2,
        ca_file: Path | str = "",
        **top: Any,
    ) -> Settings:
        smtp = {
            "host": LOOPBACK,
            "port": self.port,
            "security": security,
            "username": username,
            "from_address": "" if "@" in username else "me@example.test",
            "ca_file": str(ca_file),
        }
        return Settings.model_validate({"timeout": timeout, "smtp": smtp, **top})


async def _write(writer: asyncio.StreamWriter, text: str, drip: float) -> None:
    data = ("\r\n".join(text.split("\n")) + "\r\n").encode("utf-8")
    if drip:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(drip)
    else:
        writer.write(data)
        await writer.drain()


async def _serve_script(
    run: RunningScript, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    script = run.script
    counter: dict[str, int] = {}
    run.connections += 1
    await _write(writer, script.greeting, script.drip.get("GREETING", 0.0))
    continuation = False
    while True:
        line = await reader.readline()
        if not line:
            run.closed_by_client.set()
            return
        run.lines.append(line)
        verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
        key = "AUTH+" if continuation else verb
        reply = script.reply(key, counter)
        continuation = False
        if reply == CLOSE:
            writer.close()
            return
        if reply == SILENT:
            continue
        await _write(writer, reply, script.drip.get(key, 0.0))
        if key == "AUTH" or key == "AUTH+":
            continuation = reply.startswith("334")
        if verb == "STARTTLS" and reply.startswith("220") and script.tls is not None:
            await writer.start_tls(script.tls)
        if verb == "QUIT":
            writer.close()
            return
        if verb == "DATA" and reply.startswith("354"):
            body = bytearray()
            while not body.endswith(b"\r\n.\r\n"):
                chunk = await reader.read(65536)
                if not chunk:
                    run.closed_by_client.set()
                    return
                body += chunk
                if script.close_in_data:
                    writer.close()
                    return
            run.bodies.append(bytes(body))
            final = script.reply(".", counter)
            if final == CLOSE:
                writer.close()
                return
            if final == SILENT:
                continue
            await _write(writer, final, script.drip.get(".", 0.0))


ScriptedFactory = Callable[[Script], Any]


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedFactory]:
    """Factory: ``await scripted_server(Script(replies={...}))`` → ``RunningScript``."""
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def start(script: Script) -> RunningScript:
        run = RunningScript(port=0, script=script)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            writers.append(writer)
            try:
                await _serve_script(run, reader, writer)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                run.closed_by_client.set()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, LOOPBACK, 0)
        servers.append(server)
        run.port = server.sockets[0].getsockname()[1]
        return run

    yield start
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass
class Tarpit:
    """Accepts connections and never answers."""

    port: int
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def tarpit() -> AsyncIterator[Tarpit]:
    """A server that accepts and never greets."""
    pit = Tarpit(port=0)
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        pit.accepted.set()
        try:
            while await reader.read(65536):
                pass
            pit.closed_by_client.set()
        except ConnectionError:
            pit.closed_by_client.set()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    pit.port = server.sockets[0].getsockname()[1]
    yield pit
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, never listened on)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    try:
        yield port
    finally:
        sock.close()
