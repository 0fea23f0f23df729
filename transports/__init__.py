"""The engine: getting a message out. Never imports Textual, tui or screens.

Public surface:

- settings models (``Settings`` and its sections) and ``field_errors``
- ``PRESETS`` (provider presets and guidance, as data)
- ``build_message`` / ``Outgoing`` (RFC 5322 messages with attachments)
- ``TranscriptEvent`` (one line of the live transcript)
- ``SendFailure`` and ``FailureClass`` (classified failures with hints)
- ``Transport`` and ``open_transport`` (SMTP and HTTP relay behind one interface)
"""

from __future__ import annotations
