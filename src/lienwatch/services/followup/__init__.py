"""The follow-up engine on the store (see ``service.py``)."""

from lienwatch.services.followup.model import AgentOutcome, LoanView, TickReport
from lienwatch.services.followup.service import FollowupService

__all__ = ["AgentOutcome", "FollowupService", "LoanView", "TickReport"]
