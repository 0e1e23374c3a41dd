"""CLI sub-commands, each module exposing ``register(app)`` for :mod:`lienwatch.cli`."""
