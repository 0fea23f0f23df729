"""Adversarial tests: hostile SMTP servers, hostile HTTP relays, hostile password commands."""
