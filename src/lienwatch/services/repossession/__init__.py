"""Repossession and disposal (收车与处置): :class:`RepossessionService` and its read views."""

from lienwatch.services.repossession.service import RepossessionService
from lienwatch.services.repossession.views import OverdueStep

__all__ = ["OverdueStep", "RepossessionService"]
