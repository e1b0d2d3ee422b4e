"""The HTTP baseline: a bare Flask app that answers like the recipient pages, doing nothing.

Served by gunicorn under deploy/gunicorn.conf.py with the same workers and
threads as the subject, it measures what Flask, gunicorn, the access log and
the load generator cost by themselves on this machine, so that the subject's
throughput can be given as a fraction of it.

    gunicorn -c deploy/gunicorn.conf.py bench.bare_app:app
"""

from __future__ import annotations

from flask import Flask

PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Unsubscribed</title>"
    "<p>You will get no more mail from this list.</p></html>"
)

app = Flask(__name__)


@app.route("/u/<token>", methods=["GET", "POST"])
@app.route("/p/<token>", methods=["GET", "POST"])
def page(token: str) -> str:
    """Answer any recipient URL with a short page."""
    return PAGE


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Say the server is up (the harness waits for this)."""
    return {"status": "ok"}
