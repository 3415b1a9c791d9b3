"""Run a step in a fresh subprocess and measure wall time and peak RSS of its whole process tree."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float
    peak_rss_mb: float
    output: str


def measure(code: str, poll: float = 0.05) -> Measurement:
    """Run `code` with this interpreter; RSS is the sum over the process and its children, polled."""
    start = time.perf_counter()
    # output goes to a file, not a pipe: a step that prints more than a pipe holds (Spark's logs) would block
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(poll)
    seconds = time.perf_counter() - start
    log.seek(0)
    output = log.read()
    log.close()
    if proc.returncode:
        raise RuntimeError(f"benchmark step failed ({proc.returncode}):\n{output[-3000:]}")
    return Measurement(seconds, peak / 2**20, output)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
