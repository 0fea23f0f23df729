"""Where smtpdesk keeps its files.

One place decides every path, so the CLI, the TUI and the tests agree:

- the settings file: ``--config`` > ``SMTPDESK_CONFIG`` > the platform's user
  config dir (``~/.config/smtpdesk/settings.toml`` on Linux, ``XDG_CONFIG_HOME``
  honoured);
- the data dir (send log, the record of the last successful test):
  ``SMTPDESK_DATA_DIR`` > the platform's user data dir
  (``~/.local/share/smtpdesk``, ``XDG_DATA_HOME`` honoured);
- the documents folder: ``--documents`` > ``SMTPDESK_DOCUMENTS`` > the
  settings' ``documents.folder`` > ``<data dir>/documents``.

Nothing here creates a directory: callers that write create what they need.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP_NAME = "smtpdesk"
CONFIG_ENV = "SMTPDESK_CONFIG"
DATA_DIR_ENV = "SMTPDESK_DATA_DIR"
"""Overrides the data dir; ``--demo`` points it at a temporary folder."""
DOCUMENTS_ENV = "SMTPDESK_DOCUMENTS"
SETTINGS_FILE = "settings.toml"


def _expand(value: str | Path) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(value))))


def default_config_dir() -> Path:
    """The platform's user config dir for smtpdesk (not created)."""
    return user_config_path(APP_NAME, appauthor=False)


def config_path(explicit: str | Path | None = None) -> Path:
    """The settings file: ``--config`` > ``SMTPDESK_CONFIG`` > the user config dir.

    Args:
        explicit: the ``--config`` value, if given.

    Returns:
        The path of the settings file (which may not exist yet).
    """
    if explicit is not None and str(explicit) != "":
        return _expand(explicit)
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return _expand(from_env)
    return default_config_dir() / SETTINGS_FILE


def data_dir() -> Path:
    """The data dir: ``SMTPDESK_DATA_DIR`` > the platform's user data dir (not created)."""
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        return _expand(from_env)
    return user_data_path(APP_NAME, appauthor=False)


def documents_dir(explicit: str | Path | None = None, settings_folder: str = "") -> Path:
    """The documents folder.

    Args:
        explicit: the ``--documents`` value, if given.
        settings_folder: ``documents.folder`` from the settings file ("" = not set).

    Returns:
        ``--documents`` > ``SMTPDESK_DOCUMENTS`` > ``documents.folder`` >
        ``<data dir>/documents``.
    """
    if explicit is not None and str(explicit) != "":
        return _expand(explicit)
    from_env = os.environ.get(DOCUMENTS_ENV, "")
    if from_env:
        return _expand(from_env)
    if settings_folder:
        return _expand(settings_folder)
    return data_dir() / "documents"
