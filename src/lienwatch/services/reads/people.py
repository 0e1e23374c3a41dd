"""Personal data as each role may read it: a borrower's phone and ID numbers, and who paid a
loan's payments, masked unless a role that may see them asks (supervisors, analysts), and
then the view is written to the audit log (:func:`disclosed`, the one rule for both)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_id_number, mask_phone
from lienwatch.access.policy import may_see_personal_data
from lienwatch.access.principal import Viewer
from lienwatch.errors import Forbidden
from lienwatch.services.auth import AuditAction
from lienwatch.store.repositories import AuditRepository
from lienwatch.store.tables import Borrower

PERSONAL_DATA_VIEWED = AuditAction.PERSONAL_DATA.value


def disclosed(
    session: Session, viewer: Viewer, *, reveal: bool, subject: str, fields: list[str],
    at: datetime, client: str = "", why: str = "",
) -> bool:  # fmt: skip
    """Whether ``viewer`` reads ``fields`` of ``subject`` in clear: not unless ``reveal``;
    a reveal is refused (Forbidden) to the roles that may not, and each one written to the
    audit log with who, when, from where and why."""
    if not reveal:
        return False
    if not may_see_personal_data(viewer.role):
        raise Forbidden(f"reveal: the {viewer.role.value} role sees personal data masked")
    AuditRepository(session).add(at=at, actor=viewer.username, action=PERSONAL_DATA_VIEWED,
                                 subject=subject, client=client,
                                 details={"fields": fields, "why": why})  # fmt: skip
    return True


def borrower_view(
    session: Session, viewer: Viewer, borrower: Borrower, *, reveal: bool = False,
    at: datetime, client: str = "", why: str = "",
) -> dict[str, Any]:  # fmt: skip
    """``borrower`` for ``viewer``: masked, or in clear with ``reveal`` (refused to the roles
    that may not; each such view audited with who, when, from where and why)."""
    reveal = disclosed(session, viewer, reveal=reveal, subject=f"borrower:{borrower.ref}",
                       fields=["phone", "id_number"], at=at, client=client, why=why)
    return {
        "ref": borrower.ref, "kind": borrower.kind, "name": borrower.name,
        "phone": borrower.phone if reveal else mask_phone(borrower.phone),
        "id_number": borrower.id_number if reveal else mask_id_number(borrower.id_number),
        "city": borrower.city, "province_code": borrower.province_code,
        "time_zone": borrower.time_zone, "masked": not reveal,
    }  # fmt: skip
