"""An aiosmtpd server that speaks SASL XOAUTH2 and accepts only tokens it is told to.

aiosmtpd 1.4 has no XOAUTH2: ``XOAuth2Smtp.auth_XOAUTH2`` implements it the way
Office 365 does: ``AUTH XOAUTH2 <base64>``; on a bad token a ``334`` challenge
carrying a base64 JSON error, then ``535 5.7.3 Authentication unsuccessful``
after the client's empty answer. Reusable by the SMTP transport's tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP as AioSmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, Session

TokenCheck = Callable[[str, str], bool]


@dataclass
class XOAuth2Log:
    """What the server saw: (user, token accepted?) per attempt, and the messages."""

    attempts: list[tuple[str, bool]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)


class XOAuth2Smtp(AioSmtpServer):
    """aiosmtpd's SMTP with an XOAUTH2 mechanism checked by ``accepts(user, token)``."""

    def __init__(self, handler: Any, accepts: TokenCheck, log: XOAuth2Log, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._accepts = accepts
        self._log = log

    async def auth_XOAUTH2(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802
        if len(args) != 2:
            await self.push("501 5.5.2 XOAUTH2 needs its initial response")
            return AuthResult(success=False, handled=True)
        try:
            blob = base64.b64decode(args[1].encode("ascii"), validate=True).decode("utf-8")
            user_part, auth_part, *_ = blob.split("\x01")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            await self.push("501 5.5.2 Can't decode XOAUTH2 response")
            return AuthResult(success=False, handled=True)
        user = user_part.removeprefix("user=")
        token = auth_part.removeprefix("auth=Bearer ")
        ok = user_part.startswith("user=") and self._accepts(user, token)
        self._log.attempts.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "SMTP.Send"})
        await self.challenge_auth(base64.b64encode(error.encode()).decode(), encode_to_b64=False)
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )


class _Handler:
    def __init__(self, log: XOAuth2Log) -> None:
        self._log = log

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: AioSmtpServer, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self._log.messages.append(content)
        return "250 2.0.0 Ok: queued as XO1"


@asynccontextmanager
async def xoauth2_server(
    tls: ssl.SSLContext, accepts: TokenCheck
) -> AsyncIterator[tuple[int, XOAuth2Log]]:
    """A STARTTLS server on 127.0.0.1 (port 0) offering only XOAUTH2 (after STARTTLS)."""
    log = XOAuth2Log()
    loop = asyncio.get_running_loop()
    protocols: list[XOAuth2Smtp] = []

    def factory() -> XOAuth2Smtp:
        server = XOAuth2Smtp(
            _Handler(log),
            accepts,
            log,
            hostname="outlook.smtpdesk.test",
            tls_context=tls,
            require_starttls=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            loop=loop,
        )
        protocols.append(server)
        return server

    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], log
    finally:
        server.close()
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await server.wait_closed()
