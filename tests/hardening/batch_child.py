"""A batch in its own process, killed at random moments by the fault tests.

    python -m tests.hardening.batch_child LOG BATCH COUNT MAILDIR < settings-json-and-secret

The first run sends ``make_jobs(COUNT)`` as ``BATCH``; a later run (the batch
is already in the log) resumes it, settling an interrupted message by looking
for its Message-ID in the server's capture folder ``MAILDIR`` — what an
operator does by checking the mailbox — so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import sys
from pathlib import Path

from tests.batch.killed_batch import make_jobs
from transports.settings import Settings
from tui.batch import resume_batch, send_batch
from tui.sendlog import SendLog


def captured_ids(maildir: Path) -> list[str]:
    """The Message-IDs of the messages the sandbox wrote to ``maildir``."""
    found = []
    for path in sorted(maildir.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if parsed["Message-ID"] is not None:
            found.append(str(parsed["Message-ID"]))
    return found


async def main(argv: list[str]) -> int:
    log_path, batch_id, count, maildir = Path(argv[0]), argv[1], int(argv[2]), Path(argv[3])
    settings = Settings.model_validate_json(sys.stdin.readline())
    secret = sys.stdin.readline().rstrip("\n")
    jobs = make_jobs(settings, count)
    # Imports are done: the test times its kill from here, not from the start
    # of the process (import time varies far more than sending does).
    print("ready", flush=True)
    backoff, max_attempts = (0.05, 0.1, 0.2), 30  # ride through a restarting server
    with SendLog(log_path) as log:
        if log.entries(batch_id=batch_id, limit=1):
            report = await resume_batch(
                batch_id,
                settings,
                secret,
                log=log,
                jobs=jobs,
                check_delivered=lambda mid: mid in captured_ids(maildir),
                backoff=backoff,
                max_attempts=max_attempts,
            )
        else:
            report = await send_batch(
                settings,
                secret,
                jobs,
                log=log,
                batch_id=batch_id,
                backoff=backoff,
                max_attempts=max_attempts,
            )
    print(f"finished: {len(report.sent)} sent", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
