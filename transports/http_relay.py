"""Placeholder: replaced by the real transport."""

from __future__ import annotations

from transports.base import Transport


class HttpTransport(Transport):
    """Not yet implemented."""
