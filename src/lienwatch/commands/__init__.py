"""CLI commands, one module per capability; `lienwatch.cli` assembles them."""
