"""The ``spacer`` command: one module per subcommand, assembled by
``spacer_command``.

Each ``*_command`` module exposes ``register(subparsers)`` and sets ``func``
on its parser; a module imports what its command needs only when the
command runs, so ``spacer submit`` stays as light as the producer client
(no torch, no task code).
"""
