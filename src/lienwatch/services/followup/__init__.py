"""The follow-up engine on the store (see ``service.py``)."""

from lienwatch.services.followup.model import LoanView, TickReport
from lienwatch.services.followup.service import FollowupService

__all__ = ["FollowupService", "LoanView", "TickReport"]
