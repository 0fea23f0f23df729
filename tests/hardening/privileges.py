"""Run a child without root's power to ignore file permissions.

The tests run as root here, and root reads a mode 000 file and writes into a
mode 0500 folder. ``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
from the bounding set before exec, so the child — still uid 0, still owning
the files — is refused exactly as an ordinary user would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def unprivileged_python(
    code: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args`` where file permissions apply (skip when impossible)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is missing: permissions cannot be enforced")
        prefix = DROP
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [*prefix, sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if "setpriv:" in result.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {result.stderr.strip()}")
    return result
