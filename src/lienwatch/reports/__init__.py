"""Reports: the portfolio overview and the daily risk warning report (HTML)."""
