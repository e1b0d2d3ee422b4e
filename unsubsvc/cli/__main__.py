"""Run the command line as ``python -m unsubsvc.cli`` (how ``serve`` starts its deliverer)."""

from __future__ import annotations

from unsubsvc.cli import main

if __name__ == "__main__":
    main()
