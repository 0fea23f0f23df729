"""Fixtures that start the built-in sandbox for a test.

``sandbox`` is a running ``tui.sandbox.Sandbox`` on 127.0.0.1 with ephemeral
ports, started in the test's own event loop, capturing to ``tmp_path/sandbox``.
Use ``sandbox.settings("starttls" | "tls" | "http")`` for settings pointed at
it, ``sandbox.password`` / ``sandbox.http_key`` for the secrets, and
``sandbox.faults`` to script replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.sandbox import Sandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A running sandbox (SMTP STARTTLS + implicit TLS + HTTP relay) on loopback."""
    async with Sandbox(tmp_path / "sandbox") as running:
        yield running
