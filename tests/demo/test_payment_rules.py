"""The abnormal-payment rules measured on the simulator's labelled payments: its third-party
payers and the anomalies planted on a share of the loans."""

from __future__ import annotations

from lienwatch.demo.payments import score_payment_rules
from lienwatch.sim.generate import SimConfig, generate


def test_the_rules_find_the_labelled_payments_of_the_simulated_book():
    figures = score_payment_rules(generate(SimConfig(loans=120, days=20, seed=11)), seed=11)
    assert figures["labelled"] == sum(k["labelled"] for k in figures["by_kind"].values()) > 0
    # the simulator's own third-party payers are labelled, not only the planted anomalies
    assert figures["by_kind"]["third_party_payer"]["labelled"] > 0
    assert figures["recall"] >= 0.95 and figures["precision"] >= 0.5
    assert set(figures["unlabelled_flags"]) <= {"CHANNEL_CHANGE", "TIME_CHANGE", "ROUND_SUM"}


def test_the_unsupervised_score_is_measured_at_the_rules_review_effort():
    figures = score_payment_rules(generate(SimConfig(loans=120, days=20, seed=11)), seed=11)
    forest = figures["unsupervised"]
    assert forest["top_k"] == figures["flagged"]
    # far better than a random ranking of the same payments, short of the rules
    assert forest["precision"] > 3 * forest["random_precision"]
    assert forest["recall"] <= figures["recall"]
