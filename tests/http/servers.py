"""A tiny scripted HTTP/1.1 server for relay tests: fixed answers, every request recorded."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass
class Recorded:
    """One request as the server saw it."""

    request_line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What the server replies: status, headers, body; or ``hang`` (never answer)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False
    echo_authorization: bool = False
    """Put the request's Authorization header into the body (a careless relay)."""
    stream_bytes: int = 0
    """Send this many extra body bytes slowly-but-surely after ``body`` (a huge reply)."""


class ScriptedHttpServer:
    """``async with ScriptedHttpServer(Answer(...)) as server:`` then ``server.url``."""

    def __init__(self, answer: Answer | None = None, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer or Answer()
        self.tls = tls
        self.requests: list[Recorded] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/send"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                await self._handle(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                self._tasks.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        except asyncio.CancelledError:
            pass  # stopped by stop(): end quietly (asyncio logs a cancelled handler)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.rstrip("\r\n").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Recorded(request_line, headers, body))
        answer = self.answer
        if answer.hang:
            await asyncio.Event().wait()
        payload = answer.body
        if answer.echo_authorization:
            payload += headers.get("authorization", "").encode()
        total = len(payload) + answer.stream_bytes
        head_lines = [
            f"HTTP/1.1 {answer.status} Scripted",
            f"Content-Length: {total}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in answer.headers.items()),
        ]
        writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
        remaining = answer.stream_bytes
        while remaining > 0:
            chunk = b"x" * min(remaining, 16384)
            writer.write(chunk)
            await writer.drain()
            remaining -= len(chunk)
