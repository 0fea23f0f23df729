"""The settings file: read with tomllib, written atomically with tomli-w.

The file looks exactly like DESIGN.md section 4. Loading:

- a missing file gives ``Settings.unconfigured()`` (defaults, not yet valid for
  sending);
- a file that is not TOML, has an unknown key, a value of the wrong type or an
  invalid value raises ``StoreError``, whose text names the file, the key and
  the problem — one line per problem. Values are checked strictly: ``port =
  "587"`` is an error, not silently converted. A file missing required values
  (no host, say) is reported the same way, naming the field.

Saving writes a temporary file in the same folder (mode 0600), fsyncs it,
renames it over the settings file and fsyncs the folder, so a crash leaves
either the old or the new file, never half of one. The previous version is
kept as ``settings.toml.bak``. A folder created here is made mode 0700.

Two programs saving at once (two smtpdesk windows, or smtpdesk and a script):
a save holds an exclusive ``flock`` on ``settings.toml.lock`` beside the file,
and a store that loaded the file refuses to save over a version it did not
load ("changed by another program since it was loaded"), so one save wins
whole and the other is told instead of silently undoing it.

A settings file that other users can read (0644, from an older version or an
editor) is made 0600 on load, and ``SettingsStore.notices`` says so once.

The password is never part of ``Settings``, so it can never reach this file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Final

import tomli_w
from pydantic import ValidationError

from transports.settings import Settings, field_errors

LOCK_TIMEOUT: Final = 5.0
"""Seconds a save waits for another program's save to finish."""
_NOT_LOADED: Final = "not loaded"

HEADER = (
    "# smtpdesk settings (DESIGN.md section 4). Written by smtpdesk; edit freely.\n"
    "# The password is never stored here: see SMTPDESK_PASSWORD, password_command\n"
    "# or `smtpdesk password set`.\n\n"
)


class StoreError(Exception):
    """The settings file cannot be read or written.

    ``str()`` is one clear message naming the file, the key and the problem
    (one line per problem when there are several).
    """

    def __init__(
        self, path: Path, message: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        """The settings file concerned."""
        self.problems: list[tuple[str, str]] = problems or []
        """``(dotted key, problem)`` pairs for an invalid file (empty otherwise)."""


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "a table",
}


def _describe_value(value: Any) -> str:
    if isinstance(value, dict) and "__toml_datetime__" in value:
        return f"got the date/time {value['__toml_datetime__']}"
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return f"got {kind}"
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"got {text}, {kind}"


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    """``(key, problem)`` pairs; unknown keys are named in full (``smtp.hostt``)."""
    pairs: list[tuple[str, str]] = []
    inputs = {
        ".".join(str(p) for p in item["loc"]): item.get("input")
        for item in error.errors(include_url=False)
        if item["type"] not in {"value_error", "assertion_error"}
    }
    for field, message in field_errors(error):
        if message.startswith("unknown key '"):
            key = message[len("unknown key '") :].split("'", 1)[0]
            field = f"{field}.{key}" if field else key
        elif field in inputs and message.startswith("Input should be"):
            message = f"{message} ({_describe_value(inputs[field])})"
        pairs.append((field or "settings", message))
    return pairs


def _json_default(value: Any) -> Any:
    # TOML dates and times have no JSON form: pass them as an object, which no
    # settings field accepts, so they fail validation naming their key.
    return {"__toml_datetime__": str(value)}


def parse_settings(text: str, path: Path) -> Settings:
    """Validate the text of a settings file; ``StoreError`` names file, key and problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StoreError(path, f"{path}: not a valid TOML file: {exc}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise StoreError(path, f"{path}: not a valid TOML file: nested too deeply") from None
    try:
        # JSON + strict: a TOML string is never silently turned into a number or
        # a boolean, while enums still accept their string values.
        return Settings.model_validate_json(json.dumps(data, default=_json_default), strict=True)
    except RecursionError:
        raise StoreError(path, f"{path}: the settings are nested too deeply") from None
    except ValidationError as exc:
        problems = _problems(exc)
        lines = [f"{path}: {key}: {message}" for key, message in problems]
        raise StoreError(path, "\n".join(lines), problems) from None


def dump_settings(settings: Settings) -> str:
    """The TOML text for ``settings``, in the order of DESIGN.md section 4."""
    data = settings.model_dump(mode="json")
    if float(data["timeout"]).is_integer():
        data["timeout"] = int(data["timeout"])
    return HEADER + tomli_w.dumps(data)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename still happened
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync folder.

    Raises:
        OSError: when the folder cannot be written.
    """
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def ensure_private_dir(folder: Path, *, tighten: bool = False) -> None:
    """Create ``folder`` (and parents) with mode 0700 where missing.

    Args:
        folder: the folder to create.
        tighten: also set 0700 on an existing folder (only for our own folders,
            never for a folder the user chose, such as /tmp).
    """
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for item in reversed(missing):
        item.mkdir(mode=0o700, exist_ok=True)
        os.chmod(item, 0o700)  # mkdir's mode is filtered by the umask
    if tighten and not missing and stat.S_IMODE(folder.stat().st_mode) & 0o077:
        os.chmod(folder, 0o700)


def _remove_stale_temp_files(target: Path) -> None:
    """Delete temp files that a killed save left beside ``target`` (and its ``.bak``).

    Called with the save lock held, so no other save is writing one right now.
    """
    for stale in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass  # not ours to remove, or already gone


class SettingsStore:
    """The settings file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path: Path = Path(path)
        """The settings file."""
        self.notices: list[str] = []
        """Things the user should be told once, e.g. that the file was made private."""
        self._loaded: str | None = _NOT_LOADED
        """SHA-256 of the bytes last loaded or saved; None: the file was missing."""

    def __repr__(self) -> str:
        return f"SettingsStore({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        """The lock file taken while saving: ``settings.toml.lock`` beside the real file."""
        target = self.path.resolve() if self.path.is_symlink() else self.path
        return target.with_name(target.name + ".lock")

    @property
    def backup_path(self) -> Path:
        """Where the previous version is kept: ``settings.toml.bak``."""
        return self.path.with_name(self.path.name + ".bak")

    def exists(self) -> bool:
        """True when the settings file exists."""
        return self.path.exists()

    def read_text(self) -> str | None:
        """The file's text, ``None`` when missing; ``StoreError`` when unreadable."""
        raw = self._read_bytes()
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(
                self.path,
                f"{self.path}: not a valid TOML file: not UTF-8 text (byte {exc.start})",
            ) from None

    def _read_bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise StoreError(self.path, f"{self.path}: is a folder, not a settings file") from None
        except OSError as exc:
            raise StoreError(
                self.path,
                f"{self.path}: cannot read the settings file: {exc.strerror or exc}",
            ) from None

    def _tighten(self) -> None:
        """Make a settings file that others can read private (0600), and say so once."""
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return
        if not mode & 0o077:
            return
        try:
            os.chmod(self.path, 0o600)
        except OSError as exc:
            self.notices.append(
                f"{self.path}: other users can read this file (mode {mode:04o}) and it could "
                f"not be made private: {exc.strerror or exc}; run: chmod 600 {self.path}"
            )
            return
        self.notices.append(
            f"{self.path}: other users could read this file (mode {mode:04o}); "
            "it is now private (0600)"
        )

    def load(self) -> Settings:
        """The settings; defaults when the file is missing.

        Raises:
            StoreError: the file is unreadable, not TOML, or invalid (the text
                names the file, the key and the problem). The file is left as it is.
        """
        raw = self._read_bytes()
        # Remembered before parsing: replacing an unreadable file is allowed too,
        # as long as nobody else changed it in the meantime.
        self._loaded = None if raw is None else hashlib.sha256(raw).hexdigest()
        if raw is None:
            return Settings.unconfigured()
        self._tighten()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(
                self.path,
                f"{self.path}: not a valid TOML file: not UTF-8 text (byte {exc.start})",
            ) from None
        return parse_settings(text, self.path)

    def save(self, settings: Settings) -> None:
        """Write the settings atomically (0600, folder 0700), keeping a ``.bak``.

        Raises:
            StoreError: the settings are not valid, or the file cannot be written.
        """
        # Never write what load() would refuse (e.g. Settings.unconfigured()).
        text = dump_settings(settings)
        parse_settings(text, self.path)
        target = self.path
        if target.is_symlink():
            # A dotfiles-managed link: write through it, keep the link.
            target = target.resolve()
        data = text.encode("utf-8")
        try:
            ensure_private_dir(target.parent, tighten=target.parent == self._default_folder())
            with self._locked(target):
                try:
                    previous: bytes | None = target.read_bytes()
                except FileNotFoundError:
                    previous = None
                self._check_unchanged(previous)
                _remove_stale_temp_files(target)
                if previous is not None and previous != data:
                    backup = target.with_name(target.name + ".bak")
                    atomic_write(backup, previous)
                atomic_write(target, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                self.path, f"{self.path}: cannot write the settings file: {reason}"
            ) from None
        self._loaded = hashlib.sha256(data).hexdigest()

    def _check_unchanged(self, current: bytes | None) -> None:
        """``StoreError`` when the file is not the version this store loaded (or saved)."""
        if self._loaded == _NOT_LOADED:
            return  # a store that never loaded the file: a plain write
        if current is None:
            return  # deleted meanwhile: writing it again loses nobody's settings
        now = hashlib.sha256(current).hexdigest()
        if now == self._loaded:
            return
        raise StoreError(
            self.path,
            f"{self.path}: not saved: the settings file was changed by another program since "
            "it was loaded. Load it again (your changes are still in the form) and save "
            "again to replace it.",
        )

    @contextmanager
    def _locked(self, target: Path) -> Iterator[None]:
        """Hold an exclusive ``flock`` on the lock file beside ``target`` while saving.

        The lock dies with its process, so a killed save never blocks the next one.
        """
        lock = target.with_name(target.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            self.path,
                            f"{self.path}: not saved: another program has been saving the "
                            f"settings for {LOCK_TIMEOUT:g} seconds ({lock} is locked); "
                            "try again",
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @staticmethod
    def _default_folder() -> Path:
        from tui.paths import default_config_dir

        return default_config_dir()
