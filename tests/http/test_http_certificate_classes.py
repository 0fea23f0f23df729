"""The HTTP relay classifies certificate failures with the same table as SMTP.

A relay reached by IP address whose certificate names only a host name fails
verification with OpenSSL code 64 (IP address mismatch): that is a host name
mismatch, with its own hint, not "certificate not valid".
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from tests.http.servers import ScriptedHttpServer
from tests.http.test_http_relay import KEY, relay_settings, run
from transports.errors import FailureClass
from transports.events import Step


async def test_certificate_for_another_name_than_the_ip_is_a_host_name_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("relay.smtpdesk.test").configure_cert(context)
    async with ScriptedHttpServer(tls=context) as server:
        outcome = await run(relay_settings(server.url), KEY)
    failure = outcome.failure
    assert failure is not None
    assert failure.step is Step.TLS
    assert failure.failure_class is FailureClass.CERT_HOSTNAME
    assert server.requests == []
