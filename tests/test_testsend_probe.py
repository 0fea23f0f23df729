"""The probe's closing line says only what the probe really did.

With security ``none`` the session is not encrypted, and with no username
there is no AUTH: "connected, secured and authenticated" would be false.
"""

from __future__ import annotations

from tests.smtpservers import Script, ScriptedFactory
from tests.transports.helpers import PASSWORD
from transports.events import Direction, Step, TranscriptEvent
from transports.settings import Security, Settings
from transports.testsend import run_test


async def probe_done_line(settings: Settings, secret: str | None) -> str:
    events: list[TranscriptEvent] = []
    outcome = await run_test(settings, secret, on_event=events.append, probe=True)
    assert outcome.ok, "\n".join(event.format() for event in events)
    [done] = [e.text for e in events if e.step is Step.DONE and e.direction is Direction.INFO]
    return done


async def test_probe_without_encryption_or_login_says_so(
    scripted_server: ScriptedFactory,
) -> None:
    server = await scripted_server(Script())
    done = await probe_done_line(server.settings(username=""), None)
    assert done.startswith("probe passed: connected (NOT encrypted: security none; no login)")
    assert "secured" not in done
    assert "authenticated" not in done


async def test_probe_with_login_over_plain_text_says_not_encrypted(
    scripted_server: ScriptedFactory,
) -> None:
    server = await scripted_server(Script())
    done = await probe_done_line(server.settings(), PASSWORD)
    assert done.startswith(
        "probe passed: connected (NOT encrypted: security none) and authenticated"
    )


def test_summary_of_a_plain_session_mentions_no_certificate() -> None:
    """security none has no TLS: the test message must not claim verification is on."""
    from transports.testsend import settings_summary

    plain = Settings.model_validate(
        {
            "smtp": {
                "host": "relay.internal",
                "port": 25,
                "security": "none",
                "from_address": "a@b.test",
            }
        }
    )
    assert "Encryption: NONE" in settings_summary(plain)
    assert "Certificate verification" not in settings_summary(plain)
    tls = plain.model_copy(
        update={"smtp": plain.smtp.model_copy(update={"security": Security.TLS})}
    )
    assert "Certificate verification: on" in settings_summary(tls)
