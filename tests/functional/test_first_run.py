"""README's quick start as a newcomer meets it: demo, then the test command's install, then demo.

The instance folder (SQLite database, development key) depends on the Python
environment only, so switching the same ``.venv`` from a wheel to the test
command's editable install keeps the demo's data and its links working.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.helpers import CommandRunner, runner_for

ROOT = Path(__file__).resolve().parents[2]
ONE_CLICK = b"List-Unsubscribe=One-Click"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_demo_on_a_taken_port_fails_before_writing_anything(
    taken_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setenv("UNSUBSVC_INSTANCE_PATH", str(instance))
    result = CommandRunner().invoke(args=["demo", "--port", str(taken_port)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: port {taken_port} on 127.0.0.1 is already in use; choose another with --port\n"
    )
    assert not instance.exists()  # no database, no development key


def test_demo_links_follow_the_port_unless_a_base_url_is_set(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSUBSVC_BASE_URL")
    demo = ["demo", "--no-serve", "--port", "8123"]
    follows = runner_for(make_app(tables=False)).invoke(args=demo)
    assert follows.exit_code == 0, follows.output
    assert "List-Unsubscribe: <http://127.0.0.1:8123/u/" in follows.stdout
    assert "one-click needs an https base URL" in follows.stdout

    monkeypatch.setenv("UNSUBSVC_BASE_URL", "https://unsub.example.com")
    fixed = runner_for(make_app(tables=False)).invoke(args=demo)
    assert "List-Unsubscribe: <https://unsub.example.com/u/" in fixed.stdout


def copy_of_checkout(target: Path) -> Path:
    """Copy the files git would clone (tracked and new, not ignored): a fresh clone of this tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def new_venv(checkout: Path) -> Path:
    """Make ``.venv`` as README does; its dependencies come from the test run's environment.

    Only unsubsvc itself is installed by the steps below, so the test spends its
    time on what changes between them, not on downloading Flask again.
    """
    env_dir = checkout / ".venv"
    venv.create(env_dir, with_pip=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", where], capture_output=True, text=True, check=True
    ).stdout.strip()
    (Path(site) / "test-run-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir / "bin"


def pip_install(bin_dir: Path, checkout: Path, *args: str) -> None:
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", *args],
        cwd=checkout, check=True, timeout=300,
    )  # fmt: skip


class Demo:
    """``.venv/bin/unsubsvc demo`` serving in the background, as README's first command."""

    def __init__(self, bin_dir: Path, checkout: Path, env: dict[str, str], port: int) -> None:
        self.process = subprocess.Popen(
            [str(bin_dir / "unsubsvc"), "demo", "--port", str(port),
             "--campaigns", "2", "--recipients", "20"],
            cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"demo did not start: {self.stderr}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def stop(self) -> None:
        self.process.terminate()
        out, err = self.process.communicate(timeout=30)
        self.stdout, self.stderr = out, err


def post(url: str) -> int:
    request = urllib.request.Request(
        url, data=ONE_CLICK, method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


@pytest.mark.slow
def test_quick_start_then_test_install_then_quick_start_keeps_the_demo(tmp_path: Path) -> None:
    checkout = copy_of_checkout(tmp_path / "unsubsvc")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNSUBSVC_", "FLASK_"))}
    bin_dir = new_venv(checkout)

    # 1. python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/unsubsvc demo
    pip_install(bin_dir, checkout, ".")
    port = free_port()
    first = Demo(bin_dir, checkout, env, port)
    try:
        first.stop()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert "Wrote 2 sends to 20 subscribers" in first.stderr
    landing = re.search(r"curl -i -X POST -d '[^']+' '([^']+)'", first.stdout)
    assert landing is not None, first.stdout
    url = landing.group(1)
    assert url.startswith(f"http://127.0.0.1:{port}/u/")
    # The printed next step runs as printed, from the checkout, without .venv on PATH.
    status_line = next(line for line in first.stdout.splitlines() if " status --list " in line)
    assert status_line.strip().startswith("./.venv/bin/unsubsvc status")

    # 2. bash tests/run.sh's install step: the same .venv, now an editable install.
    pip_install(bin_dir, checkout, "-e", ".")

    # 3. The demo again, on the same port: same database, same key, so the same link works.
    again = Demo(bin_dir, checkout, env, port)
    try:
        assert post(url) == 200
        status = subprocess.run(
            status_line.split(), cwd=checkout, env=env, capture_output=True, text=True, check=True
        )
    finally:
        again.stop()
    assert "Wrote" not in again.stderr  # the list and its history were there already
    assert json.loads(status.stdout)["subscribed"] is False
    assert (checkout / ".venv" / "var" / "unsubsvc-instance" / "unsubsvc.sqlite").exists()
    assert not (checkout / "instance").exists()


def test_the_copy_is_of_this_tree(tmp_path: Path) -> None:
    """The checkout copy carries the files a clone would, and nothing git ignores."""
    copy = copy_of_checkout(tmp_path / "c")
    assert (copy / "pyproject.toml").read_bytes() == (ROOT / "pyproject.toml").read_bytes()
    assert not (copy / ".venv").exists()
