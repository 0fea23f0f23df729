"""Test keyring backends: real ``KeyringBackend`` subclasses, never the user's keyring.

``MemoryKeyring`` keeps entries in a dict (in-process tests). ``FileKeyring``
keeps them in the JSON file named by ``SMTPDESK_TEST_KEYRING_FILE``, so a CLI
run in a subprocess (``PYTHON_KEYRING_BACKEND=tests.secrets.keyrings.FileKeyring``)
and the test can share entries. ``LockedKeyring`` fails like a locked
collection. All have priority -1: keyring never picks them by itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class TypedBackend(KeyringBackend):
    """A backend base with a typed constructor (keyring's is unannotated)."""

    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]


class MemoryKeyring(TypedBackend):
    """A dict-backed keyring."""

    priority = -1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise PasswordDeleteError("no such entry")
        del self.entries[(service, username)]


class FileKeyring(TypedBackend):
    """Entries in a JSON file shared between the test and a CLI subprocess."""

    priority = -1

    @property
    def file(self) -> Path:
        return Path(os.environ["SMTPDESK_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}
        return data

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self.file.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if f"{service}/{username}" not in data:
            raise PasswordDeleteError("no such entry")
        del data[f"{service}/{username}"]
        self.file.write_text(json.dumps(data))


class LockedKeyring(TypedBackend):
    """A keyring whose collection stays locked."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")
