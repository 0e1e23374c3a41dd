"""Risk models (issue 16): the application scorecard (WOE binning, logistic regression, points,
reason codes), pre-loan checks and the decision policy, fraud rings. Pure rules: the commands
read the files, these modules take columns and values (docs/risk.md)."""
