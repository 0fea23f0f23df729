"""The record of the last successful test, so Save and ``show`` know what is verified.

A successful test writes ``<data dir>/last-test.json``: the time, a fingerprint
of the settings it used and a short summary (protocol, host, port, security,
preset). The fingerprint is the SHA-256 of the settings' canonical JSON minus
the ``[documents]`` section (which does not change how mail leaves); the
password is never part of the settings, so it is never part of the record.
Changing the password alone therefore does not show as "changed".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transports.settings import Protocol, Settings
from tui.paths import data_dir
from tui.store import atomic_write, ensure_private_dir

RECORD_FILE = "last-test.json"
_VERSION = 1


@dataclass(frozen=True)
class VerifiedRecord:
    """The last successful test."""

    when: datetime
    """When it succeeded (timezone-aware)."""
    fingerprint: str
    summary: dict[str, Any]
    """protocol, preset, host/port/security (SMTP) or url (HTTP)."""

    def describe(self) -> str:
        """The summary in a few words, e.g. ``smtp.example.com:587 starttls``."""
        s = self.summary
        if s.get("protocol") == Protocol.HTTP.value:
            return f"HTTP relay {s.get('url', '?')}"
        return f"{s.get('host', '?')}:{s.get('port', '?')} {s.get('security', '?')}"


def record_path() -> Path:
    """``<data dir>/last-test.json``."""
    return data_dir() / RECORD_FILE


def _canonical(settings: Settings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    data.pop("documents", None)
    data["timeout"] = float(data["timeout"])
    return data


def fingerprint(settings: Settings) -> str:
    """SHA-256 (hex) of the settings' canonical JSON; never involves a password."""
    text = json.dumps(_canonical(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _summary(settings: Settings) -> dict[str, Any]:
    summary: dict[str, Any] = {"protocol": settings.protocol.value, "preset": settings.preset}
    if settings.protocol is Protocol.HTTP:
        summary["url"] = settings.http.url
    else:
        summary.update(
            host=settings.smtp.host,
            port=settings.smtp.port,
            security=settings.smtp.security.value,
        )
    return summary


def record_success(settings: Settings, *, when: datetime | None = None) -> None:
    """Record a successful test of exactly these settings.

    Raises:
        OSError: the data dir cannot be written.
    """
    when = when or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.astimezone()
    payload = {
        "version": _VERSION,
        "time": when.isoformat(),
        "fingerprint": fingerprint(settings),
        "summary": _summary(settings),
    }
    path = record_path()
    ensure_private_dir(path.parent)
    atomic_write(path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def last_success() -> VerifiedRecord | None:
    """The last successful test, or ``None`` (never tested, or an unreadable record)."""
    try:
        data = json.loads(record_path().read_text(encoding="utf-8"))
        when = datetime.fromisoformat(data["time"])
        digest = data["fingerprint"]
        summary = data.get("summary", {})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(digest, str) or not isinstance(summary, dict):
        return None
    if when.tzinfo is None:
        when = when.astimezone()
    return VerifiedRecord(when=when, fingerprint=digest, summary=summary)


def is_verified(settings: Settings) -> bool:
    """True when the last successful test used exactly these settings."""
    record = last_success()
    return record is not None and record.fingerprint == fingerprint(settings)
