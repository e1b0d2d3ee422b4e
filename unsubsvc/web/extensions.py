"""Flask extensions, created unbound here and bound in ``create_app``.

Rate limits are not here: a module-level limiter bound to several apps would
share its storage between them, so ``web.limits`` gives each app its own.
"""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
