"""Shared test helpers (no tests here): site checks, the smoke site, fixed artifacts, small runs."""
