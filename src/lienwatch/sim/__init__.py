"""Synthetic portfolio and telemetry with ground truth (seeded, reproducible)."""
