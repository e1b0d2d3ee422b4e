"""The processes the load and fault tests run and hurt: a PostgreSQL cluster and gunicorn.

- ``PostgresCluster``: a cluster of the test's own (``initdb`` into a temporary
  folder, a free loopback port, trust auth), so it can be restarted without
  touching the machine's server. ``initdb`` and ``postgres`` refuse to run as
  root, so under root they run as the ``postgres`` OS user.
- ``Instance``: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app`` in a process
  group of its own, stdout and stderr captured to files; it can be SIGKILLed
  (master and workers at once) and started again.
- ``mint_tokens``: one-click tokens for distinct new recipients, minted
  in-process (one batch, instead of a CLI call per token).

Every step is bounded by a timeout, so a hang fails the test instead of CI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from unsubsvc.core.tokens import Purpose
from unsubsvc.runtime import build_runtime
from unsubsvc.services.batch import Recipient, batch_links
from unsubsvc.services.lists import get_list
from unsubsvc.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
#: At least 32 characters, as a deployment's key must be.
LOAD_SECRET = "load-test-secret-key-0123456789-abcdef"
LIST_NAME = "news"
#: Seconds any one process step (initdb, pg_ctl, a CLI command) may take.
STEP_TIMEOUT = 60
#: Seconds a gunicorn instance may take to answer /healthz with 200.
BOOT_TIMEOUT = 30
PG_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Return the newest installed PostgreSQL server's bin folder, or None."""
    override = os.environ.get("UNSUBSVC_PG_BIN")
    candidates = [Path(override)] if override else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


@dataclass
class PostgresCluster:
    """A throwaway cluster in ``root`` (owned by the postgres user), on 127.0.0.1:``port``."""

    bin_dir: Path
    root: Path
    port: int
    database: str = "unsubsvc"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root.
            if shutil.which("runuser"):
                command = ["runuser", "-u", PG_USER, "--", *command]
            else:
                command = ["su", PG_USER, "-c", shlex.join(command)]
        done = subprocess.run(
            command,
            cwd=self.root,  # the postgres user may not be allowed into ours
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{self.server_log()}"
            )

    def server_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self) -> None:
        """Create the cluster: trust auth on loopback only, a socket folder of its own."""
        self._run(
            "initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-sync"
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                # Only a machine crash loses unsynced writes; the faults here are
                # process crashes (restart -m immediate runs crash recovery from the
                # WAL in the page cache), so fsync would only slow the test down.
                "fsync = off\n"
                "max_connections = 200\n"
            )

    def pg_ctl(self, action: str, *args: str) -> None:
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log_file),
            "-w", "-t", str(STEP_TIMEOUT - 10), *args,
        )  # fmt: skip

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server; ``immediate`` aborts every session and runs crash recovery."""
        self.pg_ctl("restart", "-m", mode)

    def stop(self, mode: str = "immediate") -> None:
        self.pg_ctl("stop", "-m", mode)

    def create_database(self) -> None:
        admin = sa.create_engine(
            self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        finally:
            admin.dispose()

    def kill_leftovers(self) -> None:
        """SIGKILL the postmaster if ``pg_ctl stop`` could not stop it."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def server_environment(database_url: str, instance_path: Path) -> dict[str, str]:
    """Return the environment a deployment would give unsubsvc, without the caller's UNSUBSVC_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNSUBSVC_", "FLASK_"))}
    env.update(
        UNSUBSVC_DATABASE_URL=database_url,
        UNSUBSVC_SECRET_KEY=LOAD_SECRET,
        UNSUBSVC_BASE_URL="https://unsub.example.com",
        UNSUBSVC_INSTANCE_PATH=str(instance_path),
        UNSUBSVC_WORKERS="2",
        UNSUBSVC_THREADS="4",
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> None:
    """Run an ``unsubsvc`` command; fail the test with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "unsubsvc.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    assert done.returncode == 0, f"unsubsvc {' '.join(args)}: {done.stdout}{done.stderr}"


@dataclass
class Instance:
    """One gunicorn server (master and workers, one process group) on a loopback port."""

    name: str
    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_files(self) -> list[Path]:
        return [self.log_dir / f"{self.name}.stdout", self.log_dir / f"{self.name}.stderr"]

    def start(self) -> None:
        """Start the server and wait until /healthz answers 200."""
        assert self.process is None or self.process.poll() is not None, "already running"
        stdout, stderr = (path.open("ab") for path in self.log_files)  # appended across restarts
        self._logs += [stdout, stderr]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={**self.env, "UNSUBSVC_BIND": f"127.0.0.1:{self.port}"},
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: killpg reaches the workers too
        )
        self.starts += 1
        self.wait_healthy()

    def wait_healthy(self, timeout: float = BOOT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.read_logs()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not healthy in {timeout}s: {self.read_logs()[-3000:]}"
                )
            time.sleep(0.1)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the master and its workers at once, and reap the master."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STEP_TIMEOUT)
        if sig != signal.SIGKILL:
            # Workers orphaned by a master that died first.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Stop the server (gracefully if it will), and close its log files."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=STEP_TIMEOUT)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def read_logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.log_files if path.exists())


Launcher = Callable[[str, dict[str, str]], Instance]


def mint_tokens(env: dict[str, str], count: int) -> dict[str, str]:
    """Return ``count`` one-click tokens of distinct new recipients, with each one's public id."""
    runtime = build_runtime(load_settings(environ=env))
    try:
        recipients = [Recipient(f"load.{n}@example.com") for n in range(count)]
        now = runtime.now()
        with runtime.unit_of_work() as session:
            links = batch_links(
                session,
                runtime.minter,
                get_list(session, LIST_NAME),
                recipients,
                now=now,
                keyring=runtime.keyring,
            )
        signer = runtime.minter.signer
        return {
            link.token: signer.verify(Purpose.UNSUBSCRIBE, link.token, now=now).subscriber
            for link in links
            if link is not None  # None: an erased address (none here)
        }
    finally:
        runtime.dispose()
