"""A raw-socket SMTP server that misbehaves on purpose, on loopback.

Unlike ``tests.smtpservers.Script`` (which speaks well-formed replies), every
answer here is raw bytes plus actions, so a test can send what no real server
would: a reply without CRLF, bytes that are not UTF-8, a code like ``999`` or
``abc``, a 5 MB EHLO, a multiline reply that never ends, one byte a second,
plaintext injected right before a TLS handshake, a close in the middle of DATA.

A ``Hostile`` says what to answer at each step: ``greeting`` and ``replies``
keyed by command verb (``EHLO``, ``STARTTLS``, ``AUTH``, ``AUTH+`` for an AUTH
continuation, ``MAIL``, ``RCPT``, ``DATA``, ``BODY`` when the first bytes of the
message arrive, ``.`` after the message, ``RSET``, ``QUIT``). Each entry is a
list of answers used in order (the last one repeated); an answer is raw bytes or
a tuple of actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from tests.smtpservers import ServerLog

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Send:
    """Write these bytes as they are (no line ending added)."""

    data: bytes


@dataclass(frozen=True)
class Drip:
    """Write these bytes one at a time, ``interval`` seconds apart."""

    data: bytes
    interval: float = 1.0


@dataclass(frozen=True)
class Flood:
    """Write ``chunk`` again and again: ``total`` bytes, or until the client leaves."""

    chunk: bytes
    total: int | None = None
    pause: float = 0.0
    """Seconds between chunks (0: as fast as the client reads)."""


@dataclass(frozen=True)
class Close:
    """Close the connection (after anything written before it)."""


@dataclass(frozen=True)
class Silent:
    """Say nothing more: wait until the client closes."""


@dataclass(frozen=True)
class StartTls:
    """Switch the connection to TLS (server side) with this context."""

    context: ssl.SSLContext


Action = Send | Drip | Flood | Close | Silent | StartTls
Answer = bytes | tuple[Action, ...]

DEFAULTS: dict[str, bytes] = {
    "EHLO": b"250-hostile.smtpdesk.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
    "HELO": b"250 hostile.smtpdesk.test\r\n",
    "AUTH": b"235 2.7.0 Authentication successful\r\n",
    "AUTH+": b"235 2.7.0 Authentication successful\r\n",
    "MAIL": b"250 2.1.0 OK\r\n",
    "RCPT": b"250 2.1.5 OK\r\n",
    "DATA": b"354 go ahead\r\n",
    ".": b"250 2.0.0 OK: queued as HOSTILE1\r\n",
    "RSET": b"250 2.0.0 OK\r\n",
    "NOOP": b"250 OK\r\n",
    "QUIT": b"221 2.0.0 Bye\r\n",
}


def line(text: str) -> bytes:
    """One reply line, CRLF-terminated, UTF-8."""
    return text.encode("utf-8") + b"\r\n"


@dataclass
class Hostile:
    """What the hostile server answers at each step (see the module docs)."""

    greeting: Answer = b"220 hostile.smtpdesk.test ESMTP\r\n"
    replies: dict[str, Sequence[Answer]] = field(default_factory=dict)

    def answer(self, key: str, counter: dict[str, int]) -> Answer:
        options = self.replies.get(key)
        if not options:
            return DEFAULTS.get(key, b"502 5.5.2 not implemented\r\n")
        index = counter.get(key, 0)
        counter[key] = index + 1
        return options[min(index, len(options) - 1)]


@dataclass
class RunningHostile(ServerLog):
    """A started hostile server and what it saw."""

    port: int
    script: Hostile
    bytes_written: int = 0


class ScriptClosed(Exception):
    """The script closed the connection."""


async def perform(run: RunningHostile, answer: Answer, writer: asyncio.StreamWriter) -> None:
    """Carry out one answer: write, drip, flood, close, go silent or start TLS."""
    actions: tuple[Action, ...] = (Send(answer),) if isinstance(answer, bytes) else answer
    for action in actions:
        if isinstance(action, Send):
            writer.write(action.data)
            run.bytes_written += len(action.data)
            await writer.drain()
        elif isinstance(action, Drip):
            for byte in action.data:
                writer.write(bytes([byte]))
                run.bytes_written += 1
                await writer.drain()
                await asyncio.sleep(action.interval)
        elif isinstance(action, Flood):
            sent = 0
            while action.total is None or sent < action.total:
                chunk = action.chunk
                if action.total is not None:
                    chunk = chunk[: action.total - sent]
                writer.write(chunk)
                sent += len(chunk)
                run.bytes_written += len(chunk)
                await writer.drain()  # raises once the client is gone
                # drain() does not yield below the high-water mark: sleep so the
                # client, in the same loop, runs as it would against a real server.
                await asyncio.sleep(action.pause)
        elif isinstance(action, Close):
            writer.close()
            raise ScriptClosed
        elif isinstance(action, Silent):
            await asyncio.Event().wait()
        else:
            await writer.start_tls(action.context)


async def _serve(
    run: RunningHostile, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    script = run.script
    counter: dict[str, int] = {}
    run.connections += 1
    await perform(run, script.greeting, writer)
    continuation = False
    while True:
        raw = await reader.readline()
        if not raw:
            run.closed_by_client.set()
            return
        run.lines.append(raw)
        verb = raw.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
        key = "AUTH+" if continuation else verb
        answer = script.answer(key, counter)
        first = (
            answer
            if isinstance(answer, bytes)
            else next((a.data for a in answer if isinstance(a, Send | Drip)), b"")
        )
        await perform(run, answer, writer)
        continuation = key in {"AUTH", "AUTH+"} and first.startswith(b"334")
        if verb == "QUIT":
            writer.close()
            return
        if verb == "DATA" and first.startswith(b"354"):
            body = bytearray()
            first_chunk = True
            while not body.endswith(b"\r\n.\r\n"):
                chunk = await reader.read(65536)
                if not chunk:
                    run.closed_by_client.set()
                    return
                body += chunk
                if first_chunk and "BODY" in script.replies:
                    first_chunk = False
                    await perform(run, script.answer("BODY", counter), writer)
            run.bodies.append(bytes(body))
            await perform(run, script.answer(".", counter), writer)


@contextlib.asynccontextmanager
async def hostile_server(script: Hostile) -> AsyncIterator[RunningHostile]:
    """Start a hostile server in the running loop; stop it (and its sessions) after."""
    run = RunningHostile(port=0, script=script)
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        try:
            await _serve(run, reader, writer)
        except (ScriptClosed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            run.closed_by_client.set()
        except asyncio.CancelledError:
            pass  # stopped below: end quietly
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    run.port = int(server.sockets[0].getsockname()[1])
    try:
        yield run
    finally:
        server.close()
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
