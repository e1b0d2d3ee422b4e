"""Gunicorn servers for the HTTP rows: started under deploy/gunicorn.conf.py, measured, stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
#: An access-log line's request and status (deploy/gunicorn.conf.py's access_log_format).
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')
#: How long a server may take to answer its first request.
START_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its master's pid, where it listens, and its log file."""

    name: str
    pid: int
    url: str
    log: Path

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes."""
        pids = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
                )
            except OSError:
                continue  # exited while we looked
            if fields.get("PPid", "").strip() == str(self.pid):
                pids.append(int(status.parent.name))
        return sorted(pids)

    def worker_rss_mb(self) -> list[float]:
        """Return each worker's resident set size (VmRSS) in MiB."""
        sizes = []
        for pid in self.worker_pids():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def log_size(self) -> int:
        """Return how many bytes the log holds now (to read what comes after)."""
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def statuses(self, since: int) -> Counter[tuple[str, str, int]]:
        """Count the access log's answers after byte ``since``: (method, /u/ or /p/, status)."""
        with self.log.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return Counter(
            (m["method"], m["path"][:3], int(m["status"])) for m in ACCESS.finditer(text)
        )

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the server's log (for error messages)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_environment(
    extra: Mapping[str, str], *, workers: int | None, threads: int | None, bind: str
) -> dict[str, str]:
    """Return the environment for a server: ours without UNSUBSVC_*, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNSUBSVC_")}
    env["UNSUBSVC_BIND"] = bind
    if workers is not None:
        env["UNSUBSVC_WORKERS"] = str(workers)
    if threads is not None:
        env["UNSUBSVC_THREADS"] = str(threads)
    env.update(extra)
    return env


def wait_ready(server: Server, process: subprocess.Popen[bytes], workers: int) -> None:
    """Wait until the server answers /healthz and all its workers are up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as answer:
                if answer.status == 200 and len(server.worker_pids()) >= workers:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_tail()}")


@contextmanager
def gunicorn(
    name: str,
    app: str,
    workdir: Path,
    *,
    env: Mapping[str, str],
    workers: int,
    threads: int | None,
) -> Iterator[Server]:
    """Run ``gunicorn -c deploy/gunicorn.conf.py APP`` from the checkout on a free port."""
    port = free_port()
    log = workdir / f"{name}.log"
    environ = server_environment(env, workers=workers, threads=threads, bind=f"127.0.0.1:{port}")
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), app]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(name, process.pid, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server, process, workers)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
