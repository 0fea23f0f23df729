"""Fixtures for the hostile-server tests: a factory of misbehaving SMTP servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.hostile.server import Hostile, RunningHostile, hostile_server

HostileFactory = Callable[[Hostile], Awaitable[RunningHostile]]


@pytest.fixture
async def hostile() -> AsyncIterator[HostileFactory]:
    """Factory: ``run = await hostile(Hostile(...))``; every server is stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(script: Hostile) -> RunningHostile:
            return await stack.enter_async_context(hostile_server(script))

        yield start
