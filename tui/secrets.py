"""Where the password comes from: environment, a password command, or the keyring.

Lookup order at send time (DESIGN.md section 4):

1. ``SMTPDESK_PASSWORD``, when set and not empty;
2. ``smtp.password_command`` (for example ``["pass", "show", "mail/smtp"]``),
   run without a shell (``shell=False``: ``;``, ``$(…)``, ``|`` and ``*`` reach it
   as plain characters), in its own session, with a timeout after which the
   whole process group is killed; only the first line of its output is used
   and at most ``MAX_OUTPUT`` bytes are kept. When it fails, the end of its
   stderr is shown to the user (it is their own command, and its complaint is
   what tells a missing GPG key from a typo), with whatever it printed as a
   first line on stdout redacted from it; this module never logs it, and the
   CLI prints it neutralised;
3. the keyring (service ``smtpdesk``, user ``username@host``; for HTTP, the
   URL's host), honouring keyring's own configuration.

Where no keyring backend works (the usual state of a server reached over
SSH) the error says so in plain words and names the two alternatives; there is
never a silent fallback to a plaintext file.

Every function here is blocking (a keyring may wait on D-Bus, a password
command on a GPG agent): the TUI calls them in thread workers. No message of
this module ever contains the password.
"""

from __future__ import annotations

import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Literal
from urllib.parse import urlsplit

from transports.settings import Protocol, Settings

SERVICE = "smtpdesk"
"""The keyring service name."""
PASSWORD_ENV = "SMTPDESK_PASSWORD"

MAX_OUTPUT = 64 * 1024
"""Bytes of a password command's output kept; the rest is read and dropped."""
MAX_STDERR = 2000
"""Characters of a failing command's stderr shown."""

NO_KEYRING_HELP = (
    "No keyring is available on this machine (usual on a server reached over SSH: "
    "there is no desktop Secret Service or D-Bus session), so smtpdesk cannot store "
    "the password there, and it never falls back to a plain-text file. "
    "Use one of these instead:\n"
    '  1. a password command in settings.toml, under [smtp]: password_command = ["pass", '
    '"show", "mail/smtp"] (run without a shell; the first line it prints is the password);\n'
    "  2. the SMTPDESK_PASSWORD environment variable, set by the service or script that "
    "runs smtpdesk."
)


class SecretsError(Exception):
    """The password could not be fetched or stored; plain words, never the secret."""


class KeyringUnavailable(SecretsError):
    """No keyring backend works here; the text starts with ``NO_KEYRING_HELP``."""


SourceKind = Literal["env", "command", "keyring", "none"]


@dataclass(frozen=True)
class PasswordSource:
    """Where the password would come from (no secret fetched)."""

    kind: SourceKind
    description: str


def keyring_user(settings: Settings) -> str:
    """The keyring user name: ``username@host`` for SMTP, the URL's host for HTTP."""
    if settings.protocol is Protocol.HTTP:
        try:
            return urlsplit(settings.http.url).hostname or ""
        except ValueError:
            return ""
    return f"{settings.smtp.username}@{settings.smtp.host}"


def needs_password(settings: Settings) -> bool:
    """False for SMTP without a username (no AUTH): nothing is looked up then."""
    return settings.protocol is Protocol.HTTP or bool(settings.smtp.username)


def _command(settings: Settings) -> list[str]:
    return list(settings.smtp.password_command)


def _scrub(text: str, secret: str | None) -> str:
    """Remove a secret from a library's message, should it ever echo it."""
    if secret and secret in text:
        text = text.replace(secret, "<redacted>")
    return text


def _keyring_failure(exc: BaseException, secret: str | None = None) -> KeyringUnavailable:
    detail = _scrub(str(exc).strip(), secret) or type(exc).__name__
    detail = detail.splitlines()[0][:300]
    return KeyringUnavailable(f"{NO_KEYRING_HELP}\n(keyring said: {type(exc).__name__}: {detail})")


def load_keyring() -> ModuleType:
    """The ``keyring`` module, imported on first use.

    keyring picks its backend by importing every backend it ships; its macOS
    backend's module runs ``ctypes.util.find_library`` at import, which on Linux
    spawns ``ldconfig`` and ``gcc`` (60-100 ms of every ``smtpdesk show``) only
    for the backend to declare itself unusable ("macOS required"). Off macOS that
    module is marked as missing (``sys.modules[name] = None``, the import
    system's documented way), which keyring already handles (``except Exception``
    around the import): the chosen backend and keyring's own configuration
    (``PYTHON_KEYRING_BACKEND``, ``keyringrc.cfg``) are unchanged.
    """
    if sys.platform != "darwin":
        # typeshed types the values as modules; None is valid (importlib docs).
        sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]
    import keyring

    return keyring


def _keyring_entry_exists(settings: Settings) -> bool:
    """Whether the keyring holds an entry; ``SecretsError`` when it cannot be used."""
    keyring = load_keyring()
    try:
        return keyring.get_password(SERVICE, keyring_user(settings)) is not None
    except Exception as exc:  # any backend failure: NoKeyringError, locked, D-Bus
        raise _keyring_failure(exc) from None


def password_source(settings: Settings) -> PasswordSource:
    """Where the password would come from, in plain words (never the password).

    For the keyring this asks whether an entry exists (a keyring call).
    """
    if not needs_password(settings):
        return PasswordSource("none", "not needed: no username is set, so there is no AUTH")
    if os.environ.get(PASSWORD_ENV):
        return PasswordSource("env", f"the {PASSWORD_ENV} environment variable")
    command = _command(settings)
    if command:
        return PasswordSource("command", f"the password command: {shlex.join(command)}")
    where = f"service {SERVICE!r}, user {keyring_user(settings)!r}"
    try:
        exists = _keyring_entry_exists(settings)
    except SecretsError:
        return PasswordSource(
            "none",
            "nowhere yet: no keyring is available on this machine; use password_command "
            f"in settings.toml or the {PASSWORD_ENV} environment variable",
        )
    if exists:
        return PasswordSource("keyring", f"the system keyring ({where})")
    return PasswordSource(
        "none",
        f"nowhere yet: the keyring has no entry ({where}); run `smtpdesk password set`",
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the command and anything it started in its session."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait()


def _run_password_command(command: list[str], timeout: float) -> str:
    """Run the command without a shell; the first line of its stdout."""
    name = command[0]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            shell=False,
            start_new_session=True,  # a timeout kill reaches no terminal
        )
    except FileNotFoundError:
        raise SecretsError(
            f"password command: {name!r} was not found (check password_command in settings.toml)"
        ) from None
    except OSError as exc:
        raise SecretsError(f"password command: cannot run {name!r}: {exc.strerror}") from None
    assert process.stdout is not None and process.stderr is not None
    stdout = bytearray()
    stderr = bytearray()
    overflow = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _kill(process)
                    raise SecretsError(
                        f"password command {name!r} did not finish within {timeout:g} s "
                        "(is it waiting for input, such as a GPG passphrase?)"
                    )
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer: bytearray = key.data
                    limit = MAX_OUTPUT if buffer is stdout else MAX_STDERR * 4
                    if len(buffer) < limit:
                        buffer += chunk[: limit - len(buffer)]
                    elif buffer is stdout:
                        overflow = True
            status = process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _kill(process)
            raise SecretsError(
                f"password command {name!r} did not finish within {timeout:g} s"
            ) from None
        finally:
            process.stdout.close()
            process.stderr.close()
    if status != 0:
        err = stderr.decode("utf-8", "replace").strip()
        # A failing command may still have printed the password on stdout (and
        # echo it in its complaint on stderr): that first line never reaches
        # the message, which the CLI prints and the TUI shows.
        candidate = bytes(stdout).partition(b"\n")[0].strip().decode("utf-8", "replace")
        if len(candidate) >= 3:
            err = err.replace(candidate, "<redacted>")
        err = err[-MAX_STDERR:] if err else "(it printed nothing on stderr)"
        how = f"was stopped by signal {-status}" if status < 0 else f"failed (exit status {status})"
        raise SecretsError(f"password command {name!r} {how}: {err}")
    first, newline, _ = bytes(stdout).partition(b"\n")
    if not newline and overflow:
        raise SecretsError(
            f"password command {name!r} printed more than {MAX_OUTPUT // 1024} KiB on its "
            "first line: that is not a password"
        )
    first = first.rstrip(b"\r")
    try:
        password = first.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretsError(
            f"password command {name!r} printed a first line that is not UTF-8 text"
        ) from None
    if not password:
        raise SecretsError(
            f"password command {name!r} printed nothing on its first line: no password"
        )
    return password


def get_password(settings: Settings, *, command_timeout: float = 10) -> str | None:
    """The password, or ``None`` when none is found anywhere.

    Order: ``SMTPDESK_PASSWORD``, then ``password_command``, then the keyring.
    SMTP without a username (no AUTH) needs none: ``None`` without any lookup.

    Raises:
        SecretsError: the password command failed, timed out or printed nothing;
            or the keyring cannot be used (``NO_KEYRING_HELP``) and nothing else
            gave a password.
    """
    if not needs_password(settings):
        return None
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    command = _command(settings)
    if command:
        return _run_password_command(command, command_timeout)
    keyring = load_keyring()

    try:
        password = keyring.get_password(SERVICE, keyring_user(settings))
    except Exception as exc:  # NoKeyringError, KeyringLocked, D-Bus errors, bad backend
        raise _keyring_failure(exc) from None
    return str(password) if password is not None else None


def set_password(settings: Settings, password: str) -> None:
    """Store the password in the keyring.

    Raises:
        SecretsError: empty password, a line break in it, or no usable keyring
            (``NO_KEYRING_HELP``).
    """
    if not password:
        raise SecretsError("the password is empty: nothing was stored")
    if "\r" in password or "\n" in password:
        raise SecretsError("the password contains a line break: nothing was stored")
    if not keyring_user(settings).strip("@"):
        raise SecretsError(
            "set the host (and username) in the settings first: the keyring entry is "
            "named after them"
        )
    keyring = load_keyring()

    try:
        keyring.set_password(SERVICE, keyring_user(settings), password)
    except Exception as exc:
        raise _keyring_failure(exc, password) from None


def clear_password(settings: Settings) -> None:
    """Remove the keyring entry; no entry is not an error.

    Raises:
        SecretsError: no usable keyring (``NO_KEYRING_HELP``).
    """
    keyring = load_keyring()
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, keyring_user(settings))
    except PasswordDeleteError:
        return
    except Exception as exc:
        raise _keyring_failure(exc) from None
