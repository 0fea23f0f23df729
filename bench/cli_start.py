"""Benchmark 2: CLI start (``smtpdesk --help``, ``smtpdesk show``) against
``python -c "import pydantic, tomllib"``, fresh processes, interleaved, medians.

Also lists what each command imported that it should not (Textual, fpdf2, httpx,
aiosmtplib). Target: ≤ 1.5×.

A second row for ``show`` measures it against its floor: a process that only imports
the libraries ``show`` cannot do without (pydantic's ``BaseModel``, email-validator,
keyring with its backend chosen) and builds smtpdesk's settings models. What is left
above 1.0× there is smtpdesk's own work.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from bench import CLI, PYTHON, Row, child_env, median, timed_run

SHOW_FLOOR = (
    "import gc, sys; gc.disable(); sys.modules['keyring.backends.macOS.api'] = None\n"
    "import tomllib, email_validator, keyring; import transports.settings; keyring.get_keyring()"
)
"""What ``show`` cannot avoid: its libraries imported, the models built, no work done
(with smtpdesk's own start-up measures: the collector off, keyring's macOS backend not
probed off macOS)."""

HEAVY = ("textual", "fpdf", "httpx", "aiosmtplib", "aiosmtpd", "fontTools", "cryptography")


def _heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """The heavy top-level packages that the command imported."""
    code = (
        "import sys, json\n"
        f"sys.argv = ['smtpdesk', *{argv!r}]\n"
        "from tui.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return [name for name in HEAVY if name in loaded]


def run(source: Path, quick: bool) -> list[Row]:
    rounds = 5 if quick else 15
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "settings.toml"
        config.write_text(
            'protocol = "smtp"\n[smtp]\nhost = "smtp.example.com"\nport = 587\n'
            'security = "starttls"\nusername = "me@example.com"\n'
        )
        env = child_env(source, SMTPDESK_CONFIG=str(config), XDG_DATA_HOME=tmp)
        cases = {"--help": ["--help"], "show": ["show"]}
        times: dict[str, list[float]] = {name: [] for name in [*cases, "reference"]}
        reference = [PYTHON, "-c", "import pydantic, tomllib"]
        times["floor"] = []
        for _ in range(rounds):
            times["reference"].append(timed_run(reference, env))
            times["floor"].append(timed_run([PYTHON, "-c", SHOW_FLOOR], env))
            for name, argv in cases.items():
                times[name].append(timed_run([PYTHON, "-c", CLI, *argv], env))
        ref = median(times["reference"])
        rows = []
        for name, argv in cases.items():
            heavy = _heavy_imports(argv, env)
            rows.append(
                Row(
                    "2 CLI start",
                    f"smtpdesk {name}",
                    median(times[name]) * 1000,
                    ref * 1000,
                    "ms",
                    "≤ 1.5×",
                    f"heavy modules imported: {', '.join(heavy) or 'none'}",
                )
            )
        rows.append(
            Row(
                "2 CLI start",
                "smtpdesk show vs its libraries' floor",
                median(times["show"]) * 1000,
                median(times["floor"]) * 1000,
                "ms",
                "report",
                "floor: import pydantic BaseModel, email-validator, keyring (backend chosen), "
                "build the settings models",
            )
        )
        return rows
