"""Tests of the settings store and paths."""
