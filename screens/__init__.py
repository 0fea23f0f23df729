"""Textual screens and their widgets; UI state only."""
