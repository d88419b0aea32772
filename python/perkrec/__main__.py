"""Command line: ``python -m perkrec COMMAND`` (or the ``perkrec`` script); the commands are in
:mod:`perkrec.cli` (demo, simulate, validate, fit, plan, evaluate)."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
