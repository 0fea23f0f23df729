"""Tests of the command line and its terminal-safety helpers."""
