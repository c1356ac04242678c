"""`python -m explorer train`."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="(being written)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise SystemExit("explorer train: not available yet")
