"""The TLS details of a verified connection come from ``getpeercert()`` (no
cryptography import on the ``smtpdesk test`` path): they must read exactly as the
DER path (cryptography's ``rfc4514_string``) writes them, over real handshakes."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from transports.smtp import describe_certificate, describe_peer_certificate

N = NameOID


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _certificate(tmp_path: Path, subject: x509.Name, issuer: x509.Name, san: bool) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if san:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("mail.example.test"),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.RFC822Name("postmaster@example.test"),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    path = tmp_path / "cert.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _handshake(pem: Path) -> tuple[dict[str, Any], bytes]:
    """A real TLS handshake in memory; the verifying client's view of the certificate."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pem)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.load_verify_locations(pem)
    client_ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    bios = [ssl.MemoryBIO() for _ in range(4)]
    client = client_ctx.wrap_bio(bios[0], bios[1])
    server = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        bios[2].write(bios[1].read())
        bios[0].write(bios[3].read())
        if all(done.values()):
            break
    assert all(done.values())
    der = client.getpeercert(binary_form=True)
    peer = client.getpeercert()
    assert der is not None and peer is not None
    return dict(peer), der


SANDBOX = _name((N.COMMON_NAME, "127.0.0.1"), (N.ORGANIZATION_NAME, "smtpdesk sandbox"))
CASES = {
    "sandbox": (SANDBOX, SANDBOX, True),
    "every short name": (
        _name(
            (N.COUNTRY_NAME, "DE"),
            (N.STATE_OR_PROVINCE_NAME, "Bayern"),
            (N.LOCALITY_NAME, "München"),
            (N.STREET_ADDRESS, "Hauptstraße 1"),
            (N.ORGANIZATION_NAME, "Müller & Söhne GmbH"),
            (N.ORGANIZATIONAL_UNIT_NAME, "IT"),
            (N.DOMAIN_COMPONENT, "example"),
            (N.USER_ID, "uid-7"),
            (N.COMMON_NAME, "mail.example.test"),
        ),
        _name(
            (N.COUNTRY_NAME, "US"), (N.ORGANIZATION_NAME, "Let's Encrypt"), (N.COMMON_NAME, "R11")
        ),
        True,
    ),
    "characters to escape": (
        _name(
            (N.ORGANIZATION_NAME, 'a,b+c;d<e>f"g\\h'),
            (N.ORGANIZATIONAL_UNIT_NAME, "#hash first"),
            (N.LOCALITY_NAME, " space first and last "),
            (N.COMMON_NAME, " "),
        ),
        _name((N.COMMON_NAME, "trailing space ")),
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_peer_certificate_reads_as_the_der_path(tmp_path: Path, case: str) -> None:
    subject, issuer, san = CASES[case]
    peer, der = _handshake(_certificate(tmp_path, subject, issuer, san))
    assert describe_peer_certificate(peer) == describe_certificate(der)


def test_unusual_names_fall_back_to_the_der_path(tmp_path: Path) -> None:
    """An attribute without a short name (emailAddress) or a multi-valued RDN: None,
    and the caller describes the DER instead."""
    odd = _name((N.EMAIL_ADDRESS, "ops@example.test"), (N.COMMON_NAME, "x"))
    peer, _der = _handshake(_certificate(tmp_path, odd, SANDBOX, True))
    assert describe_peer_certificate(peer) is None
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(N.COMMON_NAME, "a"), x509.NameAttribute(N.USER_ID, "b")]
            )
        ]
    )
    peer, _der = _handshake(_certificate(tmp_path, SANDBOX, multi, False))
    assert describe_peer_certificate(peer) is None
    assert describe_peer_certificate({}) is None
