"""Troubleshooting hints: a table of data keyed by failure class and preset.

``with_hints`` returns the failure with its hints filled in: the hints of its
class, then the preset's own for that class, then the closing hint that is
always last (try the same settings in another mail client).
"""

from __future__ import annotations

import dataclasses

from transports.errors import FailureClass, SendFailure
from transports.settings import Settings

ALWAYS_LAST = (
    "Try the same settings in another mail client (for example Thunderbird) to tell "
    "a settings problem from a network one."
)

HINTS: dict[FailureClass, tuple[str, ...]] = {}
"""General hints per failure class (filled in below)."""

PRESET_HINTS: dict[tuple[FailureClass, str], tuple[str, ...]] = {}
"""Extra hints for one class at one preset, shown before the general ones."""


def hints_for(failure_class: FailureClass, preset: str) -> tuple[str, ...]:
    """The hints for a class at a preset, the closing hint last."""
    found = [*PRESET_HINTS.get((failure_class, preset), ()), *HINTS.get(failure_class, ())]
    if failure_class is not FailureClass.CANCELLED:
        found.append(ALWAYS_LAST)
    return tuple(dict.fromkeys(found))


def with_hints(failure: SendFailure, settings: Settings) -> SendFailure:
    """The failure with the hints for its class and the settings' preset."""
    return dataclasses.replace(failure, hints=hints_for(failure.failure_class, settings.preset))
