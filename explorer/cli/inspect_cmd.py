"""`python -m explorer inspect`."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("inspect", help="(being written)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise SystemExit("explorer inspect: not available yet")
