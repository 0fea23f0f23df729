"""Server text never drives the terminal."""

from __future__ import annotations

import pytest

from tui.terminal import neutralise


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("250 OK\x1b[2J\x1b[H", "250 OK\\x1b[2J\\x1b[H"),
        ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),
        ("bell\x07", "bell\\x07"),
        ("a\rb\nc\td\x00", "a\\x0db\\x0ac\\x09d\\x00"),
        ("c1 \x9b31m csi", "c1 \\x9b31m csi"),
        ("del\x7f", "del\\x7f"),
        ("rtl \u202egnp.exe", "rtl \\u202egnp.exe"),
        ("isolate \u2066x\u2069", "isolate \\u2066x\\u2069"),
        ("bad byte \udcff", "bad byte \\udcff"),
    ],
)
def test_controls_become_visible(raw: str, shown: str) -> None:
    assert neutralise(raw) == shown
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in neutralise(raw))


def test_ordinary_unicode_is_kept() -> None:
    text = "220 mail.example.com ESMTP — Müller Zoë Ωμέγα Привет 株式会社 € “ok” \\x1b"
    assert neutralise(text) == text
