"""Benchmark 3: ``smtpdesk test`` (STARTTLS, AUTH, one message) against the sandbox,
running in a process of its own, versus a minimal smtplib script doing the same
exchange (trusting the sandbox's CA file). Fresh processes, interleaved, medians.
Target: ≤ 1.3× wall time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import CLI, PYTHON, Row, child_env, median, sandbox_process, timed_run

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
        reference = [PYTHON, "-c", SMTPLIB, str(box.port), str(box.ca_file)]
        reference += [box.username, box.password]
        for _ in range(rounds):
            ref.append(timed_run(reference, env))
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
        )
    ]
