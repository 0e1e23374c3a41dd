"""Workforce use cases: the capacity forecast and plan, and the incentives league."""
