"""``python -m bench [--quick] [--source DIR] [NAME ...]``: run the benchmarks, print
the table of ratios, and write one JSON file per benchmark to ``bench/results/``.

NAME is any of: tui, cli, test, pdf, batch, memory, keys (default: all).
``--source DIR`` measures another checkout (e.g. ``git archive`` of an older
commit) with the same benchmark code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from bench import REPO, RESULTS, Row

MODULES = {
    "tui": "tui_start",
    "cli": "cli_start",
    "test": "test_send",
    "pdf": "pdf_render",
    "batch": "batch_send",
    "memory": "memory",
    "keys": "keystroke",
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(MODULES))
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller batches")
    parser.add_argument("--source", type=Path, default=REPO, help="checkout to measure")
    parser.add_argument("--label", default="", help="suffix for the JSON result files")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    print(f"{'benchmark':<14} {'case':<42} {'smtpdesk':>10} {'reference':>10} {'ratio':>6}  target")
    for name in args.names or list(MODULES):
        module = importlib.import_module(f"bench.{MODULES[name]}")
        try:
            found: list[Row] = module.run(args.source.resolve(), args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"{name}: failed: {exc}")
            continue
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        data = {"when": stamp, "source": str(args.source), "quick": args.quick}
        data["rows"] = [row.to_dict() for row in found]
        suffix = f"-{args.label}" if args.label else ""
        (RESULTS / f"{MODULES[name]}{suffix}.json").write_text(json.dumps(data, indent=2))
        for row in found:
            ref = f"{row.reference:10.1f}" if row.reference is not None else f"{'-':>10}"
            ratio = f"{row.ratio:6.2f}" if row.ratio is not None else f"{'-':>6}"
            print(
                f"{row.benchmark:<14} {row.case[:42]:<42} {row.smtpdesk:10.1f} {ref} {ratio}  "
                f"{row.target} ({row.unit}) {row.note}",
                flush=True,
            )
        rows += found
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
