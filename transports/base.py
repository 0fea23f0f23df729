"""The transport interface: open once, send many, close.

    async with open_transport(settings, secret, on_event) as transport:
        result = await transport.send(outgoing)

``open()`` connects, secures and authenticates (the whole "probe");
``send()`` may be called many times on one connection (batches); ``close()``
ends politely (QUIT); ``abort()`` closes the socket at once, for cancellation.
Every failure is a ``SendFailure``; nothing else escapes a transport except
``asyncio.CancelledError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from transports.events import Clock, EventSink
from transports.message import Outgoing
from transports.settings import Settings


@dataclass(frozen=True)
class SendResult:
    """What the server said when it accepted a message."""

    message_id: str
    queue_id: str
    """The server's id for the queued message, when it gave one."""
    reply: str
    """The final reply, e.g. ``250 2.0.0 Ok: queued as 4Xyz``."""
    accepted: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    """Recipients the server refused while accepting others."""
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "queue_id": self.queue_id,
            "reply": self.reply,
            "accepted": list(self.accepted),
            "refused": dict(self.refused),
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


class TokenSource(Protocol):
    """Where an OAuth2 access token comes from, for SASL XOAUTH2.

    ``tui.oauth.TokenGenerator`` (wrapped by ``tui.oauth_smtp.SmtpTokenSource``)
    is one; transports never import the service. A failure should be raised
    as a ``SendFailure`` at the AUTH step; any other exception is turned into
    one by the transport.
    """

    async def __call__(self) -> str:
        """An access token valid for a while yet (refreshed first when it expires soon)."""
        ...

    async def refresh(self) -> str:
        """A new access token, even if the current one is still valid (after a 535)."""
        ...


class Transport:
    """Base class of the SMTP and HTTP transports."""

    def __init__(
        self,
        settings: Settings,
        secret: str | None,
        on_event: EventSink,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._secret = secret
        self.on_event = on_event
        self.clock = clock or Clock()

    async def open(self) -> None:
        """Connect, secure and authenticate. Raises ``SendFailure``."""
        raise NotImplementedError

    async def send(self, outgoing: Outgoing) -> SendResult:
        """Send one message on the open connection. Raises ``SendFailure``."""
        raise NotImplementedError

    async def close(self) -> None:
        """End the session politely. Never raises."""
        raise NotImplementedError

    def abort(self) -> None:
        """Close the connection at once, without waiting for the server."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            self.abort()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        # Never show the secret, even in a debugger or a traceback.
        return f"<{type(self).__name__} secret={'set' if self._secret else 'none'}>"
