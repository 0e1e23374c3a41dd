"""What the repossession verbs show: the read views the CLI, the API and the console print."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lienwatch.followup.repossession import RepoStatus


@dataclass(frozen=True, slots=True)
class OverdueStep:
    """A repossession step past its SLA deadline: the read view the CLI, API and console show."""

    repossession_id: int
    loan: str  # the loan's reference
    status: RepoStatus  # where the repossession stands
    step: str  # the step waited for
    due_by: datetime
    held_by: str | None  # the assignee's username; None: any supervisor
    breached: bool  # the watchdog recorded the breach

    def as_dict(self) -> dict[str, Any]:
        return {"repossession": self.repossession_id, "loan": self.loan,
                "status": self.status.value, "step": self.step,
                "due_by": self.due_by.isoformat(timespec="seconds"), "held_by": self.held_by,
                "breached": self.breached}  # fmt: skip
