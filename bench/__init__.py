"""Benchmarks of issue 8: smtpdesk against its references, as ratios measured side by side.

``python -m bench`` (``make bench``) runs them all; ``python -m bench pdf batch``
runs some. Each benchmark module has ``run(source, quick) -> list[Row]``; work
that must happen inside a process of its own runs as ``python -m bench.<module>
--worker ...`` with ``PYTHONPATH`` pointing at ``source`` (the checkout to
measure: the current one by default, or another, e.g. an old commit unpacked
with ``git archive``), so "before" and "after" are measured by the same code.

These machines are noisy (2 cores, other work running): runs are interleaved
and medians are reported; read the ratios, not the absolute times. Benchmarks
are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable


@dataclass
class Row:
    """One line of the table: smtpdesk's number, the reference's, and the target."""

    benchmark: str
    case: str
    smtpdesk: float
    reference: float | None
    unit: str
    target: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        return self.smtpdesk / self.reference

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


_BENCH_PATH: Path | None = None


def _bench_path() -> Path:
    """A folder holding only ``bench`` (a link to this one): this benchmark code, and
    nothing else of this checkout, on a measured process's path."""
    global _BENCH_PATH
    if _BENCH_PATH is None:
        folder = Path(tempfile.mkdtemp(prefix="smtpdesk-bench-path-"))
        (folder / "bench").symlink_to(REPO / "bench", target_is_directory=True)
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _BENCH_PATH = folder
    return _BENCH_PATH


def child_env(source: Path, **extra: str) -> dict[str, str]:
    """The environment for a measured process: ``source``'s code, this benchmark code.

    ``PYTHONSAFEPATH``: ``python -c`` / ``-m`` put the working directory (this
    checkout) first on the path, ahead of ``PYTHONPATH``, so ``--source`` used to
    measure this checkout again; and this checkout is left off the path so that
    ``tui``, ``screens`` and ``transports`` come from ``source`` only.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_bench_path()), str(source)])
    env["PYTHONSAFEPATH"] = "1"
    # As installed (pip compiles to bytecode): with PYTHONDONTWRITEBYTECODE every run
    # compiled smtpdesk's own modules again (~50 ms of a start) while the references'
    # libraries had theirs. The bytecode goes to a cache of its own (kept between
    # runs), not the checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "smtpdesk-bench-pycache")
    env.pop("SMTPDESK_DEBUG", None)
    env.update(extra)
    return env


def timed_run(argv: Sequence[str], env: dict[str, str], *, check: bool = True) -> float:
    """Wall time of a fresh process, in seconds."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    return elapsed


def worker(module: str, source: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``python -m bench.<module> --worker args`` and return the JSON it prints last."""
    done = subprocess.run(
        [PYTHON, "-m", f"bench.{module}", "--worker", *args],
        env=env or child_env(source),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(REPO),
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.{module} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


CLI = "import sys; from tui.cli import main; sys.exit(main())"
"""What the ``smtpdesk`` console script runs (so ``source`` decides which code runs)."""


@dataclass
class SandboxInfo:
    """A ``smtpdesk sandbox`` running in a process of its own."""

    port: int
    tls_port: int
    ca_file: Path
    username: str
    password: str
    settings_toml: str
    folder: Path


@contextlib.contextmanager
def sandbox_process(source: Path) -> Iterator[SandboxInfo]:
    """Start ``smtpdesk sandbox`` on free ports; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="smtpdesk-bench-") as tmp:
        folder = Path(tmp) / "sandbox"
        argv = [PYTHON, "-c", CLI, "sandbox", "--port", "0", "--tls-port", "0"]
        argv += ["--http-port", "0", "--folder", str(folder)]
        proc = subprocess.Popen(
            argv,
            env=child_env(source, XDG_DATA_HOME=tmp, XDG_CONFIG_HOME=tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                break
        text = "\n".join(lines)
        found = re.search(r"SMTP submission\s+\S+:(\d+)", text)
        tls = re.search(r"SMTP implicit TLS \S+:(\d+)", text)
        login = re.search(r"login (\S+) / password '([^']*)'", text)
        ca = re.search(r"ca_file = (.+)$", text, re.M)
        if not (found and tls and login and ca):
            proc.kill()
            raise RuntimeError(f"the sandbox did not start:\n{text}")
        start = text.index("settings.toml for it")
        snippet = [ln[2:] for ln in lines[text[:start].count("\n") + 1 :] if ln.startswith("  ")]
        # Drain its output (one line per captured message) so it never blocks.
        threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
        try:
            yield SandboxInfo(
                port=int(found.group(1)),
                tls_port=int(tls.group(1)),
                ca_file=Path(ca.group(1).strip()),
                username=login.group(1),
                password=login.group(2),
                settings_toml="\n".join(snippet) + "\n",
                folder=folder,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)
