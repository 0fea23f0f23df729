"""Shared fixtures: every test runs in its own config/data dirs, with no
SMTPDESK_* variables from the developer's shell and no real keyring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from tests.secrets.keyrings import MemoryKeyring

# Fixture modules shared by every test folder (each owned by one area).
pytest_plugins = ["tests.smtpservers", "tests.sandbox_fixtures"]


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point platform dirs at a temporary home and drop SMTPDESK_* variables."""
    import os

    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".local" / "share").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # A test must never reach the developer's real keyring.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    for name in list(os.environ):
        if name.startswith("SMTPDESK_"):
            monkeypatch.delenv(name)
    yield home


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """A real, dict-backed keyring backend for one test, then the previous one again."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
