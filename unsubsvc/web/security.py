"""Security headers on every answer.

The token sits in the URL, so no Referer may leak it; pages embed nothing from
elsewhere and may not be framed (clickjacking an unsubscribe button). Answers
carry tokens, preferences and API data: no cache may keep them.
"""

from __future__ import annotations

from flask import Flask, Response, request

from unsubsvc.web.context import runtime_of

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

#: RFC 6797 §6.1: a year, the subdomains too; sent only over an https base URL.
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"

#: Powerful features the pages never use, denied to them and anything they could embed
#: (W3C Permissions Policy; ``interest-cohort`` and ``browsing-topics`` opt out of
#: Chrome's FLoC and Topics interest tracking).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "interest-cohort",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


def init_app(app: Flask) -> None:
    """Add the headers to every response of ``app``."""
    https = runtime_of(app).settings.base_url.startswith("https://")

    @app.after_request
    def add_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if https:
            # Never over http: a browser would then refuse the plain-http demo server.
            headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        if request.endpoint != "static":
            # Pages carry tokens and personal state, the API a sender's data, /healthz a
            # state of the moment: no shared or private cache may keep any of them.
            headers.setdefault("Cache-Control", "no-store")
        return response
