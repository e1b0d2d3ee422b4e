"""Rate limits (Flask-Limiter): refuse floods of bad tokens and passwords, not valid clicks."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Install the limiter on ``app``."""
