"""``pip install .`` into a fresh virtualenv, then the contract's commands end to end.

This is the path a new user takes: a wheel (not an editable install, so the
templates must ship inside it), the ``unsubsvc`` console script, gunicorn
serving, and a one-click POST from outside the process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it with its dependencies into a new virtualenv."""
    work = tmp_path_factory.mktemp("install")
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("unsubsvc-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True
    )
    return env_dir / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def run_env(database_url: str, tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNSUBSVC_", "FLASK_"))}
    env.update(
        UNSUBSVC_DATABASE_URL=database_url,
        UNSUBSVC_SECRET_KEY=SECRET,
        UNSUBSVC_BASE_URL=f"http://127.0.0.1:{port}",
        UNSUBSVC_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    return env


@pytest.fixture
def server(installed: Path, run_env: dict[str, str], port: int) -> Iterator[str]:
    """Run ``unsubsvc serve`` from the fresh install until the test ends."""
    subprocess.run([str(installed / "unsubsvc"), "init"], env=run_env, check=True)
    proc = subprocess.Popen(
        [str(installed / "unsubsvc"), "serve", "--port", str(port), "--workers", "2"],
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None  # stderr=PIPE
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read()!r}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def unsubsvc(bin_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "unsubsvc"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_contract_commands_end_to_end(
    installed: Path, run_env: dict[str, str], server: str
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return unsubsvc(installed, run_env, *args)

    assert run("init").returncode == 0  # again: safe to repeat
    created = run(
        "list", "create", "news",
        "--topic", "product", "--topic", "events",
        "--frequency", "weekly", "--frequency", "monthly",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert run("list", "create", "news").returncode == 1

    headers = run("headers", "--list", "news", "--email", "Ann@Example.com", "--campaign", "c1")
    assert headers.returncode == 0, headers.stderr
    first, second = headers.stdout.splitlines()
    assert second == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    uri = first.removeprefix("List-Unsubscribe: <").removesuffix(">")
    assert uri.startswith(server + "/u/")

    before = json.loads(run("status", "--list", "news", "--email", "ann@example.com").stdout)
    assert before["subscribed"] is True

    # The landing page renders from the installed wheel's templates and changes nothing.
    with urllib.request.urlopen(uri, timeout=10) as page:
        assert "Unsubscribe from news?" in page.read().decode()
    assert (
        json.loads(run("status", "--list", "news", "--email", "ann@example.com").stdout) == before
    )

    request = urllib.request.Request(
        uri,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get("Set-Cookie") is None

    after = json.loads(run("status", "--list", "news", "--email", "ann@example.com").stdout)
    assert after == {**before, "subscribed": False, "email": "Ann@Example.com"}
    assert run("status", "--list", "nope", "--email", "a@example.com").returncode == 1
