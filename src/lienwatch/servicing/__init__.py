"""Loan servicing engine: products, loan terms, payment replay, state, portfolio run. No I/O."""
