"""Run the app under a production WSGI server: gunicorn, or waitress where gunicorn can't run."""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask

from unsubsvc.web.context import runtime_of


def serve(app: Flask, host: str, port: int, *, workers: int = 2, threads: int = 4) -> None:
    """Serve ``app`` on ``host:port`` until interrupted."""
    # Connections opened before forking must not be shared by the workers.
    runtime_of(app).dispose()
    if sys.platform == "win32":  # pragma: no cover - gunicorn needs fork()
        import waitress

        waitress.serve(app, host=host, port=port, threads=threads * workers)
        return
    _gunicorn(app, {"bind": f"{host}:{port}", "workers": workers, "threads": threads})


def _gunicorn(app: Flask, options: dict[str, Any]) -> None:
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 27
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return app

    Application().run()
