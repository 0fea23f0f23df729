"""Email address and header-value checks shared by the settings and messages.

Only syntax is checked, never DNS: addresses on private domains
(``ops@server.local``, ``root@localhost``, ``billing@example.test``) are valid,
as a business server on an internal network needs them.
"""

from __future__ import annotations

import contextlib
import functools


@functools.cache
def _validator() -> None:
    """Import email-validator on the first address checked (about 25 ms that
    ``smtpdesk --help`` or ``show`` without addresses need not pay) and allow the
    internal domains.

    email-validator rejects special-use domains by default. Its README documents
    SPECIAL_USE_DOMAIN_NAMES as the list to edit; the three names below are the
    ones internal mail systems really use. "invalid", "onion" and "arpa" stay out.
    """
    import email_validator

    for name in ("local", "localhost", "test"):
        with contextlib.suppress(ValueError):  # two threads may race here on first use
            email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(name)


_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"} | {chr(c) for c in range(0x80, 0xA0)}
"""C0, DEL and C1 controls. C1 includes U+0085 (NEL), which the ``email`` package
treats as a line break, and U+009B (CSI), which some terminals obey."""
_SEPARATORS = {"\u2028", "\u2029"}
"""LINE and PARAGRAPH SEPARATOR: ``str.splitlines`` (and so the ``email`` package's
header folding) breaks lines on them, so in a header they are line breaks."""
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional embeddings, overrides and isolates. In a display name, subject or
file name they reorder what the reader sees ("invoice\u202egpj.exe" shows as
"invoiceexe.jpg"), so a sender could be spoofed: they are refused there."""
SHOWN_CHARACTERS = 60
"""How much of a rejected value an error message repeats."""


def shorten(value: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``repr(value)``, cut to about ``limit`` characters, for error messages.

    A pasted 10,000-character value must not turn one error line into a page.
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


class AddressError(ValueError):
    """An address that is not valid; the message says why in plain words."""


def check_no_line_breaks(value: str) -> str:
    """Reject CR, LF and NUL anywhere (header injection)."""
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain a line break (CR or LF)")
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def check_header_text(value: str) -> str:
    """A header value such as a subject or display name.

    No line breaks of any kind (CR, LF, NEL, U+2028, U+2029), no control
    characters and no bidirectional controls (which can disguise a sender's
    name or a file name).
    """
    check_no_line_breaks(value)
    breaks = sorted({f"U+{ord(c):04X}" for c in value if c in _SEPARATORS or c == "\x85"})
    if breaks:
        raise ValueError(f"must not contain a line break ({', '.join(breaks)})")
    bad = sorted({f"U+{ord(c):04X}" for c in value if c in _CONTROL and c != "\t"})
    if bad:
        raise ValueError(f"must not contain control characters ({', '.join(bad)})")
    check_no_bidi_controls(value)
    return value


def check_no_bidi_controls(value: str) -> str:
    """Reject bidirectional embeddings, overrides and isolates (U+202A–E, U+2066–9)."""
    bidi = sorted({f"U+{ord(c):04X}" for c in value if c in BIDI_CONTROLS})
    if bidi:
        raise ValueError(
            f"must not contain bidirectional control characters ({', '.join(bidi)}): "
            "they change the order in which the text is shown"
        )
    return value


def normalize_address(value: str) -> str:
    """Return the address if its syntax is valid, else raise ``AddressError``."""
    check_no_line_breaks(value)
    if value != value.strip():
        raise AddressError("must not start or end with spaces")
    if not value:
        raise AddressError("is empty")
    _validator()
    import email_validator

    try:
        result = email_validator.validate_email(
            value,
            check_deliverability=False,
            globally_deliverable=False,
            allow_smtputf8=True,
        )
    except email_validator.EmailNotValidError as exc:
        raise AddressError(f"{shorten(value)} is not a valid email address: {exc}") from None
    return str(result.normalized)


def looks_like_address(value: str) -> bool:
    """True when the value is a syntactically valid address."""
    try:
        normalize_address(value)
    except ValueError:
        return False
    return True
