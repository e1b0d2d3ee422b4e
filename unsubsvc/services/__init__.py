"""Use cases over an explicit SQLAlchemy Session: what the web and the CLI call."""
