"""Test SMTP servers on loopback (aiosmtpd with TLS and AUTH, and scripted fakes)."""

from __future__ import annotations
