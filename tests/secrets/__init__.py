"""Tests of the password sources."""
