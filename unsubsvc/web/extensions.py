"""Flask extensions, created unbound here and bound in ``create_app``."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
#: Limits are declared where the views are; ``web.limits`` binds it with the settings' storage.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
