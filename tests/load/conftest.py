"""Fixtures for the load and fault tests: a private PostgreSQL cluster, gunicorn instances.

The cluster is stopped and its folder deleted, and every server killed, however
the test ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.test_install import free_port
from tests.load.processes import PG_USER, Instance, Launcher, PostgresCluster, postgres_bin_dir


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a private PostgreSQL cluster with an empty ``unsubsvc`` database; delete it after."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql"
        )
    # Not under pytest's tmp_path: its parents are private to root, and the
    # server runs as the postgres user. The socket path must also stay short.
    root = Path(tempfile.mkdtemp(prefix="unsubsvc-load-pg-"))
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_USER)
            os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster = PostgresCluster(bin_dir, root, free_port())
        cluster.socket_dir.mkdir()
        if os.geteuid() == 0:
            os.chown(cluster.socket_dir, owner.pw_uid, owner.pw_gid)
        cluster.init()
        try:
            cluster.start()
            cluster.create_database()
            yield cluster
        finally:
            try:
                cluster.stop()
            except (RuntimeError, subprocess.TimeoutExpired):
                cluster.kill_leftovers()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Return a function that starts a named gunicorn instance; all are stopped afterwards."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    started: list[Instance] = []

    def start(name: str, env: dict[str, str]) -> Instance:
        instance = Instance(name, free_port(), env, log_dir)
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in started:
        instance.stop()
