"""A batch run in its own process, for the kill-and-resume test.

    python -m tests.batch.killed_batch LOG BATCH_ID COUNT < settings-json-and-secret

Reads the settings (JSON, one line) and the secret (second line) from stdin,
so the secret never shows in the process list, then sends ``make_jobs(COUNT)``
as batch ``BATCH_ID`` with the send log at ``LOG``. The test kills it with
SIGKILL part-way and resumes the batch itself with the same jobs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from transports.message import Attachment, Outgoing, build_message
from transports.settings import Settings
from tui.batch import BatchJob, send_batch
from tui.sendlog import SendLog


def make_jobs(settings: Settings, count: int) -> list[BatchJob]:
    """``count`` invoices to different customers, each with a small attachment."""

    def job(number: int) -> BatchJob:
        def build(message_id: str) -> Outgoing:
            return build_message(
                settings,
                to=[f"customer{number:02d}@example.test"],
                subject=f"Invoice INV-{number:04d} from ACME Ltd",
                body=f"Dear customer,\n\nplease find invoice INV-{number:04d} attached.\n",
                attachments=[
                    Attachment(
                        f"INV-{number:04d}.pdf",
                        b"%PDF-1.7\n" + bytes(range(256)) * 8,
                        "application/pdf",
                    )
                ],
                message_id=message_id,
            )

        return BatchJob(
            job_id=f"INV-{number:04d}",
            message=build,
            document_id=f"inv-{number:04d}",
            recipients=[f"customer{number:02d}@example.test"],
            subject=f"Invoice INV-{number:04d} from ACME Ltd",
        )

    return [job(n) for n in range(1, count + 1)]


async def main(argv: list[str]) -> int:
    log_path, batch_id, count = Path(argv[0]), argv[1], int(argv[2])
    settings = Settings.model_validate_json(sys.stdin.readline())
    secret = sys.stdin.readline().rstrip("\n")
    with SendLog(log_path) as log:
        report = await send_batch(
            settings, secret, make_jobs(settings, count), log=log, batch_id=batch_id
        )
    print(f"finished: {len(report.sent)} sent", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
