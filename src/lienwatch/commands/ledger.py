"""``lienwatch ledger``, ``contract`` and ``collateral``: the tamper-evident ledger."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lienwatch import clock
from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.commands.common import emit
from lienwatch.commands.options import At, By, Json, day_option, time_option
from lienwatch.config import load_settings
from lienwatch.ledger.entries import LedgerError
from lienwatch.ledger.heads import key_id, raw_public_key
from lienwatch.ledger.verify_proof import check
from lienwatch.services.ledger import LedgerService
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store
from lienwatch.store.tables import LedgerEntry
from lienwatch.tabular import require_file


def register(app: typer.Typer) -> None:
    ledger = typer.Typer(help="The tamper-evident ledger: heads, verification, proofs.",
                         no_args_is_help=True)  # fmt: skip
    ledger.command("key")(key_command)
    ledger.command("seal")(seal_command)
    ledger.command("verify")(verify_command)
    ledger.command("prove")(prove_command)
    ledger.command("check-proof")(check_proof_command)
    app.add_typer(ledger, name="ledger")
    contract = typer.Typer(help="Electronic contracts, registered by digest.", no_args_is_help=True)
    contract.command("register")(contract_register_command)
    contract.command("check")(contract_check_command)
    app.add_typer(contract, name="contract")
    collateral = typer.Typer(help="Collateral (mortgage) registration of vehicles (抵押登记).",
                             no_args_is_help=True)  # fmt: skip
    collateral.command("register")(collateral_register_command)
    collateral.command("release")(collateral_release_command)
    app.add_typer(collateral, name="collateral")


def key_command(as_json: Json = False) -> None:
    """The public key that verifies the ledger's tree heads (made on first use): publish it,
    so that anyone can check a proof bundle against it."""
    path = load_settings().ledger.key_file
    public = load_or_create_key(path).public_key()
    shown = {"public_key": base64.b64encode(raw_public_key(public)).decode(),
             "key_id": key_id(public), "key_file": str(path)}  # fmt: skip
    emit(shown, as_json, [f"{shown['public_key']}  (Ed25519, key id {shown['key_id']})"])


def seal_command(at: At = None, as_json: Json = False) -> None:
    """Number the pending entries and sign a new tree head (the scheduler does it every
    [ledger] seal_every_s)."""
    moment = at or clock.now()
    with _ledger(signing=True) as ledger:
        head = ledger.seal(at=moment)
        shown = None if head is None else {
            "tree_size": head.tree_size, "root": head.root.hex(),
            "signed_at": head.signed_at.isoformat(), "key_id": head.key_id,
        }  # fmt: skip
    line = "nothing pending" if shown is None else (
        f"head {shown['tree_size']}: root {shown['root']} signed {shown['signed_at']}")  # fmt: skip
    emit(shown, as_json, [line])


def verify_command(as_json: Json = False) -> None:
    """Recompute the ledger and check every signed head; exit 1 and name each changed,
    missing, inserted or reordered entry and each bad head."""
    with _ledger(signing=False) as ledger:
        report = ledger.verify()
    heads = f"{report.heads} signed head{'' if report.heads == 1 else 's'}"
    lines = [f"{'ok' if report.ok else 'NOT OK'}: {report.entries:,} entries, {heads}, "
             f"{report.pending:,} pending", *report.problems]  # fmt: skip
    emit(report.as_dict(), as_json, lines)
    if not report.ok:
        raise typer.Exit(1)


def prove_command(
    entry: Annotated[int, typer.Argument(help="The entry's number (leaf index).", min=0)],
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle.")],
    as_json: Json = False,
) -> None:
    """Write a self-contained proof that ENTRY is in the ledger: the entry, its inclusion
    path, the signed head and the public key (checked by `ledger check-proof` or the
    standalone verify_proof.py)."""
    with _ledger(signing=False) as ledger:
        bundle = ledger.prove(leaf_index=entry)
    out.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    emit({"entry": entry, "tree_size": bundle["head"]["tree_size"], "out": str(out)}, as_json,
          [f"wrote the proof of entry {entry} in a ledger of {bundle['head']['tree_size']} "
           f"entries to {out}"])  # fmt: skip


def check_proof_command(
    bundle: Annotated[Path, typer.Argument(help="A proof bundle (JSON).")],
    as_json: Json = False,
) -> None:
    """Check a proof bundle with no database: the head's signature and the entry's path to
    its root. Compare its public key with the one the lender publishes (`ledger key`)."""
    require_file(bundle, "BUNDLE")
    try:
        data = json.loads(bundle.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LedgerError(f"bundle: {bundle} is not JSON ({exc})") from None
    problem = check(data) if isinstance(data, dict) else "bundle: not a JSON object"
    if problem:
        emit({"proven": False, "problem": problem}, as_json, [f"NOT PROVEN: {problem}"])
        raise typer.Exit(1)
    entry = json.loads(data["entry"])
    emit({"proven": True, "leaf_index": data["leaf_index"], "entry": entry,
           "tree_size": data["head"]["tree_size"], "signed_at": data["head"]["signed_at"],
           "public_key": data["public_key"]}, as_json,
          [f"proven: entry {data['leaf_index']} ({entry['kind']} of {entry['subject']} at "
           f"{entry['at']}) is in the ledger of {data['head']['tree_size']} entries, head "
           f"signed {data['head']['signed_at']} by key {data['public_key']}"])  # fmt: skip


def contract_register_command(
    document: Annotated[Path, typer.Argument(help="The signed document (PDF or any file).")],
    loan: Annotated[str, typer.Option("--loan", help="The loan's reference.")],
    party: Annotated[list[str], typer.Option("--party", help="A signing party (repeat).")],
    signed_at: Annotated[datetime, time_option("--signed-at", "When it was signed")],
    method: Annotated[str, typer.Option("--method", help="How it was signed.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Register an electronic contract: the SHA-256 of the document, its parties, signing
    time and method, in the ledger."""
    require_file(document, "DOCUMENT")
    with _ledger(signing=False) as ledger:
        shown = ledger.register_contract(
            document=document.read_bytes(), loan_ref=loan, parties=party,
            signed_at=signed_at, method=method, by=by,
            at=at or clock.now(),
        )  # fmt: skip
    emit(shown, as_json, [f"registered contract of loan {loan}: sha256 "
                           f"{shown['data']['sha256']} (pending until the next seal)"])  # fmt: skip


def contract_check_command(
    document: Annotated[Path, typer.Argument(help="The document to look for.")],
    as_json: Json = False,
) -> None:
    """Whether this exact document is a registered contract, and which entry proves it;
    exit 1 when it is not."""
    require_file(document, "DOCUMENT")
    with _ledger(signing=False) as ledger:
        entry = ledger.find_contract(document.read_bytes())
        shown = None if entry is None else _entry(entry)
    if shown is None:
        emit({"registered": False}, as_json, ["not registered: no contract has this digest"])
        raise typer.Exit(1)
    where = (f"entry {shown['leaf_index']}" if shown["leaf_index"] is not None
             else "a pending entry")  # fmt: skip
    emit({"registered": True, **shown}, as_json,
          [f"registered: contract of loan {shown['subject']}, {where}"])  # fmt: skip


def collateral_register_command(
    vin: Annotated[str, typer.Option("--vin")],
    plate: Annotated[str, typer.Option("--plate")],
    authority: Annotated[str, typer.Option("--authority", help="The registration office.")],
    certificate: Annotated[str, typer.Option("--certificate", help="Certificate number.")],
    registered_on: Annotated[date, day_option("--registered-on", "Registration date")],
    loan: Annotated[str, typer.Option("--loan", help="The secured loan's reference.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record a vehicle's mortgage registration for a loan."""
    with _ledger(signing=False) as ledger:
        ledger.register_collateral(vin=vin, plate=plate, authority=authority,
                                   certificate=certificate,
                                   registered_on=registered_on,
                                   loan_ref=loan, by=by, at=at or clock.now())  # fmt: skip
    emit({"vin": vin, "loan": loan, "registered": True}, as_json,
          [f"registered the mortgage of {vin} for loan {loan}"])


def collateral_release_command(
    vin: Annotated[str, typer.Option("--vin")],
    released_on: Annotated[date, day_option("--released-on", "Release date")],
    certificate: Annotated[str, typer.Option("--certificate", help="Release certificate.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record the release of a vehicle's mortgage registration."""
    with _ledger(signing=False) as ledger:
        ledger.release_collateral(vin=vin, released_on=released_on,
                                  certificate=certificate, by=by,
                                  at=at or clock.now())  # fmt: skip
    emit({"vin": vin, "released": True}, as_json, [f"released the mortgage of {vin}"])


@contextmanager
def _ledger(*, signing: bool) -> Iterator[LedgerService]:
    """The ledger service in one transaction; with ``signing`` it holds the private key,
    else the public key when the key file exists (heads are then checked)."""
    settings = load_settings()
    path = settings.ledger.key_file
    key = load_or_create_key(path) if signing or path.exists() else None
    with open_store(settings.database_url) as database, transaction(database.factory) as s:
        yield LedgerService(s, key=key if signing else None,
                            public_key=key.public_key() if key else None)  # fmt: skip


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    return {"leaf_index": entry.leaf_index, **json.loads(entry.body)}
