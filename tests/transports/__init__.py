"""Tests of the SMTP transport, failure classification, hints and secrecy."""
