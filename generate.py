#!/usr/bin/env python
"""Run the analyses and write the report's site sources into docs/. See README.md, or ``--help``."""

from xai.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
