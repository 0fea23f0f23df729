"""The application: entry points (the App class, the CLI) and its services.

Services (settings store, secrets, documents, send log, sandbox) never import
Textual; only ``tui.app`` and the screens do.
"""
