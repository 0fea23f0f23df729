"""Benchmark 3: ``smtpdesk test`` (STARTTLS, AUTH, one message) against the sandbox,
running in a process of its own, versus a minimal smtplib script doing the same
exchange (trusting the sandbox's CA file). Fresh processes, interleaved, medians.
Target: ≤ 1.3× wall time.

A second row measures it against its floor: the same smtplib exchange in a process
that first imports what ``smtpdesk test`` cannot do without (pydantic's ``BaseModel``
and the settings models, email-validator, asyncio, aiosmtplib). What is left above
1.0× there is smtpdesk's own work.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import CLI, PYTHON, Row, child_env, median, sandbox_process, timed_run

FLOOR = (
    "import gc; gc.disable()\n"
    "import asyncio, email_validator, aiosmtplib, transports.settings\n"
    "gc.enable()\n"
)
"""What ``test`` cannot avoid before its exchange (with the collector off as smtpdesk does)."""

SMTPLIB = """
import smtplib, ssl, sys
from email.message import EmailMessage
port, ca, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
msg = EmailMessage()
msg["From"] = msg["To"] = user
msg["Subject"] = "smtplib test"
msg.set_content("test")
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="localhost", timeout=20) as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.login(user, password)
    s.send_message(msg)
"""


def run(source: Path, quick: bool) -> list[Row]:
    rounds = 4 if quick else 10
    with sandbox_process(source) as box, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "settings.toml"
        config.write_text(box.settings_toml)
        env = child_env(
            source,
            SMTPDESK_CONFIG=str(config),
            SMTPDESK_PASSWORD=box.password,
            XDG_DATA_HOME=tmp,
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        )
        ours: list[float] = []
        ref: list[float] = []
        floor: list[float] = []
        reference = [PYTHON, "-c", SMTPLIB, str(box.port), str(box.ca_file)]
        reference += [box.username, box.password]
        for _ in range(rounds):
            ref.append(timed_run(reference, env))
            floor.append(timed_run([PYTHON, "-c", FLOOR + SMTPLIB, *reference[3:]], env))
            ours.append(timed_run([PYTHON, "-c", CLI, "test"], env))
    return [
        Row(
            "3 test send",
            "smtpdesk test vs smtplib script",
            median(ours) * 1000,
            median(ref) * 1000,
            "ms",
            "≤ 1.3×",
            "fresh processes; sandbox in its own process",
        ),
        Row(
            "3 test send",
            "smtpdesk test vs its libraries' floor",
            median(ours) * 1000,
            median(floor) * 1000,
            "ms",
            "report",
            "floor: the smtplib script after importing pydantic + the settings models, "
            "email-validator, asyncio, aiosmtplib",
        ),
    ]
