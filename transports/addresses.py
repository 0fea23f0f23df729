"""Email address and header-value checks shared by the settings and messages.

Only syntax is checked, never DNS: addresses on private domains
(``ops@server.local``, ``root@localhost``, ``billing@example.test``) are valid,
as a business server on an internal network needs them.
"""

from __future__ import annotations

import email_validator

# email-validator rejects special-use domains by default. Its README documents
# SPECIAL_USE_DOMAIN_NAMES as the list to edit; the three names below are the
# ones internal mail systems really use. "invalid", "onion" and "arpa" stay out.
for _name in ("local", "localhost", "test"):
    if _name in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_name)

_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


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
    """A header value such as a subject or display name: no control characters."""
    check_no_line_breaks(value)
    bad = sorted({f"U+{ord(c):04X}" for c in value if c in _CONTROL and c != "\t"})
    if bad:
        raise ValueError(f"must not contain control characters ({', '.join(bad)})")
    return value


def normalize_address(value: str) -> str:
    """Return the address if its syntax is valid, else raise ``AddressError``."""
    check_no_line_breaks(value)
    if value != value.strip():
        raise AddressError("must not start or end with spaces")
    if not value:
        raise AddressError("is empty")
    try:
        result = email_validator.validate_email(
            value,
            check_deliverability=False,
            globally_deliverable=False,
            allow_smtputf8=True,
        )
    except email_validator.EmailNotValidError as exc:
        raise AddressError(f"{value!r} is not a valid email address: {exc}") from None
    return str(result.normalized)


def looks_like_address(value: str) -> bool:
    """True when the value is a syntactically valid address."""
    try:
        normalize_address(value)
    except ValueError:
        return False
    return True
