"""deploy/: the compose file, the gunicorn config, and how its workers restart and die.

The process tests start real gunicorn masters (deploy/gunicorn.conf.py and
``unsubsvc serve``) on free loopback ports and SIGKILL them: a restarted
instance must get the port within 5 s, even with a slow client connected.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from flask import Flask

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
COMPOSE = DEPLOY / "compose.yaml"
#: How soon after a master's SIGKILL a new instance must be listening.
REBIND_SECONDS = 5.0


# --- Processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env(values: Mapping[str, str]) -> dict[str, str]:
    """Return this environment less UNSUBSVC_* and FLASK_* variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNSUBSVC_", "FLASK_"))}
    env.update(values)
    return env


def gunicorn_command(port: int) -> tuple[list[str], dict[str, str]]:
    """Return gunicorn's command line with the deploy config, and what to add to its environment."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return [gunicorn, "-c", str(GUNICORN_CONF), "wsgi:app"], {
        "UNSUBSVC_BIND": f"127.0.0.1:{port}",
        "UNSUBSVC_WORKERS": "2",
    }


def serve_command(port: int) -> tuple[list[str], dict[str, str]]:
    """Return ``unsubsvc serve``'s command line (the CLI's own defaults otherwise)."""
    return [sys.executable, "-m", "unsubsvc.cli", "serve", "--port", str(port)], {}


SERVERS = {"gunicorn-conf": gunicorn_command, "unsubsvc-serve": serve_command}


class Server:
    """A server process on a loopback port; its stdout and stderr go to files."""

    def __init__(self, kind: str, port: int, env: Mapping[str, str], logs: Path) -> None:
        command, extra = SERVERS[kind](port)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        logs.mkdir(parents=True, exist_ok=True)
        self.out, self.err = logs / "stdout.log", logs / "stderr.log"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=subprocess_env({**env, **extra}), stdout=out, stderr=err
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:  # URLError, a refused or reset connection, a timeout
            return False

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server did not start:\n{self.logs()}")
            time.sleep(0.1)

    def wait_workers(self, count: int, timeout: float = 30) -> list[int]:
        """Return the pids of the master's ``count`` workers, once they are all there."""
        deadline = time.monotonic() + timeout
        while len(found := children(self.pid)) < count:
            assert time.monotonic() < deadline, f"workers {found} of {count}:\n{self.logs()}"
            time.sleep(0.1)
        return found

    def stop(self) -> None:
        """Stop the master with SIGTERM (gunicorn's graceful stop), or kill it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def proc_stat(pid: int) -> tuple[str, int] | None:
    """Return a process's state letter and parent pid from /proc, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = stat.rpartition(")")[2].split()[:2]
    return state, int(ppid)


def children(pid: int) -> list[int]:
    """Return the live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    """Return whether ``pid`` still runs: a zombie holds no socket any more."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """Settings for a server on an SQLite database of its own (/healthz needs no tables)."""
    return {
        "UNSUBSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite'}",
        "UNSUBSVC_SECRET_KEY": SECRET,
        "UNSUBSVC_INSTANCE_PATH": str(tmp_path / "instance"),
    }


# --- compose.yaml -----------------------------------------------------------------


def compose_command() -> list[str] | None:
    """Return how to run Compose here (v2 plugin, else v1), or None without either."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def check_compose_structure(config: dict[str, Any]) -> None:
    """Assert what the deployment needs of the compose file, raw or as Compose resolved it."""
    services = config["services"]
    assert set(services) >= {"postgres", "app", "redis"}
    app = services["app"]

    context = (DEPLOY / app["build"]["context"]).resolve()  # an absolute path stays as it is
    assert context == ROOT
    assert (context / app["build"]["dockerfile"]) == DEPLOY / "Containerfile"
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert "COPY wsgi.py deploy/gunicorn.conf.py /opt/unsubsvc/" in containerfile

    command = " ".join(app["command"]) if isinstance(app["command"], list) else app["command"]
    # Migrate first, then the redacting config from the image (not `unsubsvc serve`).
    assert "unsubsvc init && exec gunicorn -c /opt/unsubsvc/gunicorn.conf.py" in command
    assert "wsgi:app" in command

    health = " ".join(app["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in health

    environment = app["environment"]
    assert environment["UNSUBSVC_DATABASE_URL"].startswith("postgresql://unsubsvc:")
    assert "@postgres:5432/unsubsvc" in environment["UNSUBSVC_DATABASE_URL"]
    assert environment["UNSUBSVC_RATELIMIT_STORAGE_URL"].startswith("redis://redis:6379/")
    assert environment["UNSUBSVC_BIND"] == "0.0.0.0:8000"

    for dependency in ("postgres", "redis"):
        assert app["depends_on"][dependency]["condition"] == "service_healthy"
        assert services[dependency]["healthcheck"]["test"]
    # Only the app is published, and on loopback: the proxy sits in front.
    assert [str(port).split(":")[0] for port in app["ports"]] == ["127.0.0.1"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


def test_compose_file_validates(tmp_path: Path) -> None:
    """``docker compose config`` accepts deploy/compose.yaml (where Compose is installed)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    check_compose_structure(raw)
    command = compose_command()
    if command is None:
        return  # the structural check above is all this machine can do
    env = subprocess_env({})
    env.pop("POSTGRES_PASSWORD", None)
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_compose_structure(yaml.safe_load(result.stdout))


def test_the_build_context_holds_what_the_image_copies() -> None:
    """Every COPY source of the Containerfile is let through its .dockerignore allowlist."""
    allowed = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Containerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for line in (DEPLOY / "Containerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied.update(words[1:-1])
    assert copied and copied <= allowed, sorted(copied - allowed)


# --- gunicorn.conf.py -------------------------------------------------------------


def test_gunicorn_accepts_the_config(sqlite_env: dict[str, str]) -> None:
    """``gunicorn --check-config`` loads the config and the app without error."""
    command, extra = gunicorn_command(free_port())
    result = subprocess.run(
        [command[0], "--check-config", *command[1:]],
        cwd=ROOT, env=subprocess_env({**sqlite_env, **extra}),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def conf_settings() -> Any:
    """Return gunicorn's Config loaded from deploy/gunicorn.conf.py, as gunicorn loads it."""
    from gunicorn.config import Config

    cfg = Config()
    for name, value in runpy.run_path(str(GUNICORN_CONF)).items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


def serve_settings(app: Flask) -> Any:
    """Return the gunicorn Config that ``unsubsvc serve`` runs with."""
    from unsubsvc.serving import gunicorn_server

    return gunicorn_server(app, bind="127.0.0.1:0", workers=2, threads=4).cfg


@pytest.fixture
def plain_app(sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    from unsubsvc.web.app import create_app
    from unsubsvc.web.context import runtime_of

    for name, value in sqlite_env.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    yield app
    runtime_of(app).dispose()


def test_workers_are_never_recycled_together(plain_app: Flask) -> None:
    """Neither config recycles workers after N requests.

    Load is spread evenly over the workers, so with any max_requests they all
    reach it within about max_requests_jitter requests of each other (on a
    busy instance, within a second) and restart together, stalling the
    instance. 0 is gunicorn's "never".
    """
    for cfg in (conf_settings(), serve_settings(plain_app)):
        assert cfg.max_requests == 0


def test_both_configs_mask_tokens_and_tie_workers_to_the_master(plain_app: Flask) -> None:
    from unsubsvc.logs import RedactingLogger
    from unsubsvc.serving import die_with_master

    conf, serve = conf_settings(), serve_settings(plain_app)
    for cfg in (conf, serve):
        assert cfg.logger_class is RedactingLogger
        assert cfg.worker_class_str == "gthread"
    assert serve.post_worker_init is die_with_master
    assert conf.post_worker_init.__module__ != "gunicorn.config"  # the conf's hook, not the no-op


# --- A SIGKILLed master -------------------------------------------------------------


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """Open connections that send half a request and wait, as a slow client does."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        clients.append(client)
    return clients


def bindable(port: int) -> bool:
    """Return whether gunicorn could listen on ``port`` now (it binds with SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_restart_after_the_master_is_killed_gets_the_port(
    kind: str, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL the master: its workers die at once, and a new instance binds within 5 s.

    Gunicorn's own check lets an orphaned worker drain its connections (up to
    graceful_timeout) while it keeps the listening socket, so a slow client
    alone made the restart fail with "Connection in use".
    """
    port = free_port()
    first = Server(kind, port, sqlite_env, tmp_path / "first")
    workers: list[int] = []
    second: Server | None = None
    clients: list[socket.socket] = []
    try:
        first.wait_healthy()
        workers = first.wait_workers(2)
        clients = slow_clients(port, 4)
        time.sleep(0.3)  # let the workers accept them

        killed_at = time.monotonic()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=5)
        while any(alive(pid) for pid in workers):
            assert time.monotonic() - killed_at < 2, "workers outlived their master"
            time.sleep(0.05)
        # The port itself; how long a new process takes to import the app is another matter.
        while not bindable(port):
            assert time.monotonic() - killed_at < REBIND_SECONDS, "the port is still held"
            time.sleep(0.05)

        second = Server(kind, port, sqlite_env, tmp_path / "second")
        second.wait_healthy()
        assert "Connection in use" not in second.logs()
    finally:
        for client in clients:
            client.close()
        first.stop()
        if second is not None:
            second.stop()
        for pid in workers:  # only if the test failed: these are our own workers
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
