"""`lienwatch demo`: the whole product on the embedded default, over a simulated portfolio."""
