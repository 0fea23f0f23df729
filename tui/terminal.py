"""Making server text safe to print on a terminal.

A mail server's replies, a relay's response body or a certificate subject are
text chosen by someone else. Printed raw, an ESC could move the cursor, change
the window title (OSC), rewrite earlier lines or ring the bell on the
sysadmin's terminal. ``neutralise`` shows every control character as a visible
escape (``"\\x1b"`` becomes the four characters ``\\x1b``) and keeps ordinary
Unicode (``Müller``, ``株式会社``) as it is.
"""

from __future__ import annotations

import re

# C0 controls (tab included: it would misalign columns), DEL, C1 controls,
# Unicode line/paragraph separators, bidirectional overrides and isolates
# ("Trojan Source": text that displays in a different order than it reads),
# and lone surrogates (undecodable bytes kept by surrogateescape, which would
# make print() fail).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` with control and bidi characters shown as visible escapes."""
    return _UNSAFE.sub(_escape, text)


def neutralise_lines(text: str) -> str:
    """Like ``neutralise``, but line breaks (``\\n``) are kept: for multi-line panels."""
    return "\n".join(neutralise(line) for line in text.split("\n"))
