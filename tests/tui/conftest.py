"""Fixtures of the Pilot tests: a config path and a keyring in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from tests.secrets.keyrings import MemoryKeyring
from transports.settings import Settings
from tui.store import SettingsStore


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """A working keyring for the test (H3's dict-backed backend), restored afterwards."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """Where the app under test keeps its settings file."""
    return tmp_path / "config" / "settings.toml"


def write_settings(path: Path, settings: Settings) -> None:
    """Save settings the way the app does (through the store)."""
    SettingsStore(path).save(settings)
