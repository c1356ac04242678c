"""`python -m explorer export`."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="(being written)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise SystemExit("explorer export: not available yet")
