"""Tests of the OAuth2 device-code sign-in service and its settings."""
