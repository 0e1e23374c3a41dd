"""The tamper-evident ledger for auditors: the latest signed head, the entries about a loan
(or a vehicle, a borrower) and the proof bundle of one entry, which anyone can check without
lienwatch (docs/ledger.md)."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from lienwatch.adapters.ledger_key import load_public_key
from lienwatch.api.context import ApiContext
from lienwatch.api.errors import ErrorBody
from lienwatch.errors import NotFoundError
from lienwatch.services.ledger import LedgerService

ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 422)}


class HeadOut(BaseModel):
    tree_size: int
    root: str  # hex
    signed_at: str
    signature: str  # base64 Ed25519 over the head
    public_key: str | None  # base64 raw Ed25519 key; None where this server has no key file


class EntryOut(BaseModel):
    leaf_index: int | None  # None until a head takes the entry in
    kind: str
    body: str  # the canonical JSON the leaf hash is taken of


class ProofOut(BaseModel):
    format: str
    entry: str
    leaf_index: int
    inclusion_path: list[str]
    head: dict[str, str | int]
    public_key: str


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1/ledger", tags=["ledger"], responses=ERRORS)
    Caller = context.caller

    def ledger(session) -> LedgerService:  # type: ignore[no-untyped-def]
        return LedgerService(session, public_key=load_public_key(context.settings.ledger.key_file))

    @api.get("/head", response_model=HeadOut)
    def head(caller: Caller) -> HeadOut:
        """The latest signed tree head and the public key that checks it."""
        with context.session(write=False) as session:
            shown = ledger(session).latest_head()
        if shown is None:
            raise NotFoundError("head: the ledger has no signed head yet")
        return HeadOut(**shown)

    @api.get("/entries", response_model=list[EntryOut])
    def entries(
        caller: Caller,
        subject: Annotated[str, Query(min_length=1, max_length=80,
                                      description="A loan reference, a VIN, a borrower.")],
    ) -> list[EntryOut]:  # fmt: skip
        """The entries about ``subject``, in the order recorded."""
        with context.session(write=False) as session:
            return [EntryOut(**e) for e in ledger(session).entries(subject=subject)]

    @api.get("/proofs/{leaf_index}", response_model=ProofOut)
    def proof(caller: Caller, leaf_index: Annotated[int, Path(ge=0, le=2**62)]) -> ProofOut:
        """The self-contained proof bundle of entry ``leaf_index`` (check it with
        ``lienwatch ledger check-proof`` or the standalone verifier)."""
        with context.session(write=False) as session:
            return ProofOut(**ledger(session).prove(leaf_index=leaf_index))

    return api
