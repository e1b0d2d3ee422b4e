"""Run the app under a production WSGI server: gunicorn, or waitress where gunicorn can't run.

``unsubsvc serve`` and ``unsubsvc demo`` serve through here; deploy/gunicorn.conf.py
uses the same worker hook and logger, and says why each setting is what it is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from flask import Flask

from unsubsvc.web.context import runtime_of

#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def serve(app: Flask, host: str, port: int, *, workers: int = 2, threads: int = 4) -> None:
    """Serve ``app`` on ``host:port`` until interrupted."""
    # Connections opened before forking must not be shared by the workers.
    runtime_of(app).dispose()
    if sys.platform == "win32":  # pragma: no cover - gunicorn needs fork()
        import waitress

        waitress.serve(app, host=host, port=port, threads=threads * workers)
        return
    gunicorn_server(app, bind=f"{host}:{port}", workers=workers, threads=threads).run()


def gunicorn_settings() -> dict[str, Any]:
    """Return the settings ``unsubsvc serve`` gives gunicorn besides bind, workers and threads."""
    from unsubsvc.logs import RedactingLogger

    return {
        "worker_class": "gthread",
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": RedactingLogger,  # tokens in paths are credentials
        # No recycling, so two workers never restart together (see deploy/gunicorn.conf.py).
        "max_requests": 0,
        "post_worker_init": die_with_master,
    }


def gunicorn_server(app: Flask, **options: Any) -> Any:
    """Return a gunicorn application serving ``app``, configured but not started."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {**gunicorn_settings(), **options}.items():
                self.cfg.set(key, value)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    return Application()


def die_with_master(worker: Any) -> None:
    """Have the kernel kill this gunicorn worker as soon as its master dies.

    A worker notices a dead master only between requests and then drains its
    connections for up to graceful_timeout (30 s) before it closes the
    listening socket: meanwhile a restarted instance cannot bind the port
    ("Connection in use"). PR_SET_PDEATHSIG (prctl(2), Linux) makes the kernel
    send SIGKILL when the thread that forked us (the master's only one) exits,
    whatever killed it; the requests in flight are lost with the master anyway.
    Elsewhere the worker keeps gunicorn's own, slower, check.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        worker.log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        return
    if os.getppid() != worker.ppid:
        # The master died before prctl() ran, so no signal will come (prctl(2)).
        os._exit(1)
