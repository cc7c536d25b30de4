"""Subcommands of ``spacer``; each module has ``register(subparsers)``."""
