"""Load with wrk: each request a path (a token) read once from a file, via bench/paths.lua."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "paths.lua"
MARK = "BENCH_JSON "


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: threads, connections and seconds per run."""

    threads: int = 2
    connections: int = 16
    seconds: float = 10.0


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported (latencies in microseconds)."""

    requests: int
    duration_us: int
    connect: int
    read: int
    write: int
    status: int
    timeout: int
    p50_us: int
    p99_us: int
    #: Paths (tokens) taken from the file: requests answered plus those still in flight.
    sent: int
    #: Requests sent after a thread ran out of paths (none in a valid run).
    exhausted: int
    #: Paths each wrk thread took: thread t sends lines t, t+T, t+2T, ... of the file.
    sent_per_thread: tuple[int, ...] = ()

    def sent_lines(self, lines: list[str]) -> list[str]:
        """Return the lines of the paths file that this run sent (answered or in flight)."""
        threads = len(self.sent_per_thread)
        return [
            lines[t + threads * j]
            for t, count in enumerate(self.sent_per_thread)
            for j in range(min(count, len(lines)))
            if t + threads * j < len(lines)
        ]

    @property
    def per_second(self) -> float:
        """Return completed requests per second."""
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def ok(self) -> int:
        """Return the answers that were not 4xx/5xx (wrk counts those as status errors)."""
        return self.requests - self.status

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout


def wrk_binary() -> str:
    """Return the wrk executable, or fail saying how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    return found


def run_wrk(
    url: str,
    paths: Path,
    load: Load,
    *,
    method: str = "GET",
    body: str = "",
    cycle: bool = False,
    seconds: float | None = None,
) -> WrkResult:
    """Load ``url`` with the paths in ``paths``, each sent once (or round again if ``cycle``)."""
    duration = seconds if seconds is not None else load.seconds
    command = [
        wrk_binary(),
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(paths),
        str(load.threads),
        method,
        body,
    ]
    if cycle:
        command.append("cycle")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            data["sent_per_thread"] = tuple(data["sent_per_thread"])
            return WrkResult(**data)
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}{done.stderr}")
