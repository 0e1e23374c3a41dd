"""Workforce: the roster, the workload forecast, the staffing plan and the reward/penalty
scheme (奖惩机制) as pure rules; :mod:`lienwatch.services.workforce` applies them to the store."""
