"""Sub-commands of ``python -m explorer``: one module each, with ``register(subparsers)``."""
