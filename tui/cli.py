"""Command-line entry point (filled in by the CLI work)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI."""
    args = sys.argv[1:] if argv is None else argv
    print("smtpdesk: not yet", args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
