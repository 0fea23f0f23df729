"""A fake OAuth2 authorization server on 127.0.0.1 (HTTPS with the test CA).

It speaks just enough HTTP/1.1 (one request per connection) and implements
the two grants smtpdesk uses, with real state: device codes with a scripted
sequence of poll answers, issued access and refresh tokens, rotation and
revocation of refresh tokens, and Microsoft-shaped error bodies. Every request
is recorded with the fake clock's time, so tests can check the polling
intervals the client kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

DEVICE_PATH = "/tenant/oauth2/v2.0/devicecode"
TOKEN_PATH = "/tenant/oauth2/v2.0/token"


class FakeClock:
    """Wall-clock seconds that only move when the injected sleep sleeps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """The injected sleep: record, advance, and let other tasks run."""
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Seen:
    """One request as the server saw it."""

    path: str
    form: dict[str, str]
    at: float


@dataclass
class FakeAuthority:
    """The authorization server's state and behaviour."""

    clock: Callable[[], float]
    client_id: str = "smtpdesk-test-client"
    poll_script: list[str | None] = field(default_factory=lambda: [None])
    """Answers to successive device-code polls: an OAuth error code, or None (success).
    The last entry repeats."""
    device_error: dict[str, Any] | None = None
    """When set, the device endpoint answers 400 with this body."""
    token_error: dict[str, Any] | None = None
    """When set, every token request answers 400 with this body."""
    interval: int = 5
    expires_in: int = 900
    access_lifetime: int = 3600
    message: str | None = None
    fail_next: list[int] = field(default_factory=list)
    """HTTP statuses to answer (with an HTML body) before behaving normally."""
    rotate_refresh_tokens: bool = True
    seen: list[Seen] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    device_codes: dict[str, int] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    """Every secret ever handed out (device codes, access and refresh tokens)."""
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def polls(self) -> list[Seen]:
        return [s for s in self.seen if s.form.get("grant_type", "").endswith("device_code")]

    @property
    def refreshes(self) -> list[Seen]:
        return [s for s in self.seen if s.form.get("grant_type") == "refresh_token"]

    def revoke_all(self) -> None:
        """Every refresh token becomes invalid (a password change, an admin's revoke)."""
        self.refresh_tokens.clear()

    def _issue(self, scope: str) -> dict[str, Any]:
        n = next(self._serial)
        access = f"at-{n}-Zq9VbX7wPk"
        refresh = f"rt-{n}-M3kLpQ8sTy"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        self.issued += [access, refresh]
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.access_lifetime,
            "access_token": access,
            "refresh_token": refresh,
        }

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, Any]:
        """The status and JSON body (or raw bytes) for one request."""
        self.seen.append(Seen(path, form, self.clock()))
        if self.fail_next:
            return self.fail_next.pop(0), b"<html>Service Unavailable</html>"
        if form.get("client_id") != self.client_id:
            return 400, {
                "error": "unauthorized_client",
                "error_description": (
                    "AADSTS700016: Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory 'Contoso'.\r\n"
                    "Trace ID: 0000\r\nCorrelation ID: 1111"
                ),
                "error_codes": [700016],
            }
        if path == DEVICE_PATH:
            if self.device_error is not None:
                return 400, self.device_error
            device_code = f"dc-{next(self._serial)}-Hh4Jj5Kk6"
            self.device_codes[device_code] = 0
            self.issued.append(device_code)
            body: dict[str, Any] = {
                "device_code": device_code,
                "user_code": "BXKQ-7RTM",
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": self.expires_in,
                "interval": self.interval,
            }
            if self.message is not None:
                body["message"] = self.message
            return 200, body
        if path != TOKEN_PATH:
            return 404, {"error": "not_found"}
        if self.token_error is not None:
            return 400, self.token_error
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            code = form.get("device_code", "")
            if code not in self.device_codes:
                return 400, {"error": "bad_verification_code"}
            index = self.device_codes[code]
            self.device_codes[code] = index + 1
            outcome = self.poll_script[min(index, len(self.poll_script) - 1)]
            if outcome is not None:
                return 400, {
                    "error": outcome,
                    "error_description": f"AADSTS70016: {outcome} for this code.",
                }
            del self.device_codes[code]
            return 200, self._issue("https://outlook.office.com/SMTP.Send")
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh_tokens:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": (
                        "AADSTS70008: The provided authorization code or refresh token has "
                        "expired due to inactivity."
                    ),
                    "error_codes": [70008],
                }
            if self.rotate_refresh_tokens:
                self.refresh_tokens.discard(token)
            issued = self._issue(form.get("scope", ""))
            if not self.rotate_refresh_tokens:
                del issued["refresh_token"]
            return 200, issued
        return 400, {"error": "unsupported_grant_type"}


class FakeAuthServer:
    """Serves a ``FakeAuthority`` over HTTPS (or plain HTTP) on 127.0.0.1, port 0."""

    def __init__(self, authority: FakeAuthority, *, tls: ssl.SSLContext | None) -> None:
        self.authority = authority
        self._tls = tls
        self._server: asyncio.Server | None = None
        self.port = 0
        self.hang = False
        """When True, requests are read but never answered."""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def device_url(self) -> str:
        return self.base + DEVICE_PATH

    @property
    def token_url(self) -> str:
        return self.base + TOKEN_PATH

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        # Python 3.11 has no Server.close_clients(): end hanging handlers here.
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.hang:
                await asyncio.Event().wait()
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
            if method != "POST":
                status, answer = 405, {"error": "method_not_allowed"}
            else:
                status, answer = self.authority.answer(path, form)
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            kind = "text/html" if isinstance(answer, bytes) else "application/json"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
