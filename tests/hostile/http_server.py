"""A raw HTTP/1.1 server that answers with arbitrary bytes and actions (drip, flood, close).

``hostile_http(answer)`` records every request (line, headers, body) and then
performs ``answer`` (raw bytes, or actions from ``tests.hostile.server``), so a
test can send a 50 MB body, a gzip bomb, a reply that never ends, a status
line that is not HTTP, or a redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.hostile.server import LOOPBACK, Answer, Hostile, RunningHostile, ScriptClosed, perform


@dataclass
class HttpRequest:
    """One request as the server saw it."""

    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RunningHttp:
    """A started hostile HTTP server and what it saw."""

    port: int
    answer: Answer
    tls: ssl.SSLContext | None = None
    requests: list[HttpRequest] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/send"


def response(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = "X"
) -> bytes:
    """A complete HTTP/1.1 response with Content-Length and Connection: close."""
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@contextlib.asynccontextmanager
async def hostile_http(
    answer: Answer, *, tls: ssl.SSLContext | None = None, read_request: bool = True
) -> AsyncIterator[RunningHttp]:
    """Start the server in the running loop; stop it and its connections after.

    With ``read_request=False`` the answer goes out as soon as a client connects
    (a plain server meeting a TLS ClientHello, a server that hangs up at once).
    """
    run = RunningHttp(port=0, answer=answer, tls=tls)
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []
    counter = RunningHostile(port=0, script=Hostile())  # byte accounting for perform

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        run.connections += 1
        try:
            if not read_request:
                await perform(counter, run.answer, writer)
                return
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.rstrip("\r\n").split("\r\n")
            headers = {}
            for raw in lines:
                name, _, value = raw.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            run.requests.append(HttpRequest(request_line, headers, body))
            await perform(counter, run.answer, writer)
        except (ScriptClosed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # stopped below: end quietly
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0, ssl=tls)
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
