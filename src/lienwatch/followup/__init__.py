"""The follow-up engine (回访): triggers, cases, strategy ladders, SLAs, assignment, the
compliance guard, channels and KPIs. Pure rules; persistence lives in ``lienwatch.store``."""
