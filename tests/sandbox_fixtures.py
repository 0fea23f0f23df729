"""Fixtures that start the built-in sandbox for a test."""

from __future__ import annotations
