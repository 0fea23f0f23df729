"""Hardening tests (issue 7, part 2): bad input, faults and load, the secret scan."""
