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

The password is never part of ``Settings``, so it can never reach this file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from transports.settings import Settings, field_errors

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
    try:
        # JSON + strict: a TOML string is never silently turned into a number or
        # a boolean, while enums still accept their string values.
        return Settings.model_validate_json(json.dumps(data, default=_json_default), strict=True)
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


class SettingsStore:
    """The settings file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path: Path = Path(path)
        """The settings file."""

    def __repr__(self) -> str:
        return f"SettingsStore({str(self.path)!r})"

    @property
    def backup_path(self) -> Path:
        """Where the previous version is kept: ``settings.toml.bak``."""
        return self.path.with_name(self.path.name + ".bak")

    def exists(self) -> bool:
        """True when the settings file exists."""
        return self.path.exists()

    def read_text(self) -> str | None:
        """The file's text, ``None`` when missing; ``StoreError`` when unreadable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise StoreError(self.path, f"{self.path}: is a folder, not a settings file") from None
        except OSError as exc:
            raise StoreError(
                self.path, f"{self.path}: cannot read the settings file: {exc.strerror}"
            ) from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(
                self.path,
                f"{self.path}: not a valid TOML file: not UTF-8 text (byte {exc.start})",
            ) from None

    def load(self) -> Settings:
        """The settings; defaults when the file is missing.

        Raises:
            StoreError: the file is unreadable, not TOML, or invalid (the text
                names the file, the key and the problem). The file is left as it is.
        """
        text = self.read_text()
        if text is None:
            return Settings.unconfigured()
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
        try:
            ensure_private_dir(target.parent, tighten=target.parent == self._default_folder())
            try:
                previous: bytes | None = target.read_bytes()
            except FileNotFoundError:
                previous = None
            data = text.encode("utf-8")
            if previous is not None and previous != data:
                backup = target.with_name(target.name + ".bak")
                atomic_write(backup, previous)
            atomic_write(target, data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                self.path, f"{self.path}: cannot write the settings file: {reason}"
            ) from None

    @staticmethod
    def _default_folder() -> Path:
        from tui.paths import default_config_dir

        return default_config_dir()
