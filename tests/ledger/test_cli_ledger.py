"""The ledger from the command line, as a lender and a third party use it: register a
contract and a mortgage, seal, verify, prove, check the proof with the standalone verifier,
and see a tampered row named."""

from __future__ import annotations

import ast
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from lienwatch.ledger import verify_proof
from tests.test_cli import run

AT = "2026-11-03T10:00:00+08:00"


def cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=tmp_path, env=env)


def book(folder: Path) -> list[str]:
    """A one-loan book on vehicle LSVAU2180N2183294, no registration yet: import options."""
    tables = {
        "borrowers": "ref,kind,name,id_number,phone,address,city,province_code\n"
                     "B000001,person,王伟,310101199003077578,13800000001,上海市黄浦区,Shanghai,31\n",
        "vehicles": "vin,plate,make,model,purchase_price,purchase_date,borrower_ref\n"
                    "LSVAU2180N2183294,沪A12345,Volkswagen,Lavida,150000.00,2026-10-20,B000001\n",
        "loans": "ref,borrower_ref,vehicle_vin,product,principal,annual_rate,term,method,"
                 "disbursed_on,booked_province\n"
                 "L000001,B000001,LSVAU2180N2183294,new-car-36,100000.00,0.0899,36,annuity,"
                 "2026-11-01,31\n",
    }  # fmt: skip
    options = []
    for kind, text in tables.items():
        (folder / f"{kind}.csv").write_text(text, encoding="utf-8")
        options += [f"--{kind}", str(folder / f"{kind}.csv")]
    return options


def test_contract_collateral_seal_verify_prove_and_a_tampered_row(tmp_path):
    db = tmp_path / "l.sqlite3"
    env = {"LIENWATCH_DATABASE_URL": f"sqlite:///{db}",
           "LIENWATCH_LEDGER__KEY_FILE": str(tmp_path / "keys" / "ledger.key")}  # fmt: skip
    assert cli(tmp_path, env, "import", *book(tmp_path)).returncode == 0  # entry 0: the loan
    assert cli(tmp_path, env, "team", "add", "east").returncode == 0
    assert cli(tmp_path, env, "user", "add", "sam", "--role", "supervisor", "--team", "east"
               ).returncode == 0  # fmt: skip
    key = json.loads(cli(tmp_path, env, "ledger", "key", "--json").stdout)
    assert (tmp_path / "keys" / "ledger.key").stat().st_mode & 0o777 == 0o600
    contract = tmp_path / "contract.pdf"
    contract.write_bytes(b"%PDF-1.7 signed loan contract of L000001\n")
    registered = cli(tmp_path, env, "contract", "register", str(contract), "--loan", "L000001",
                     "--party", "lienwatch finance", "--party", "borrower B000001",
                     "--signed-at", "2026-11-01T15:00:00+08:00", "--method", "CFCA",
                     "--by", "sam", "--at", AT)  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    again = cli(tmp_path, env, "contract", "register", str(contract), "--loan", "L000001",
                "--party", "x", "--signed-at", AT, "--method", "CFCA", "--by", "sam")  # fmt: skip
    assert again.returncode == 1 and "registered already" in again.stderr
    assert cli(tmp_path, env, "collateral", "register", "--vin", "LSVAU2180N2183294",
               "--plate", "沪A12345", "--authority", "上海市车管所", "--certificate", "310001",
               "--registered-on", "2026-11-02", "--loan", "L000001", "--by", "sam",
               "--at", AT).returncode == 0  # fmt: skip
    sealed = json.loads(cli(tmp_path, env, "ledger", "seal", "--at", AT, "--json").stdout)
    assert sealed["tree_size"] == 3 and sealed["key_id"] == key["key_id"]

    check = cli(tmp_path, env, "contract", "check", str(contract))
    assert check.stdout.strip() == "registered: contract of loan L000001, entry 1"
    forged = tmp_path / "forged.pdf"
    forged.write_bytes(contract.read_bytes().replace(b"L000001", b"L000002"))
    assert cli(tmp_path, env, "contract", "check", str(forged)).returncode == 1

    verified = cli(tmp_path, env, "ledger", "verify")
    assert verified.returncode == 0
    assert verified.stdout.strip() == "ok: 3 entries, 1 signed head, 0 pending"
    proof = tmp_path / "proof.json"
    assert cli(tmp_path, env, "ledger", "prove", "2", "--out", str(proof)).returncode == 0
    checked = cli(tmp_path, env, "ledger", "check-proof", str(proof))
    assert checked.returncode == 0 and checked.stdout.startswith("proven: entry 2 (")
    assert json.loads(proof.read_text())["public_key"] == key["public_key"]

    # A third party: the verifier file alone, outside lienwatch, accepts it, then refuses
    # the bundle with one character of the entry changed.
    verifier = tmp_path / "third-party" / "verify_proof.py"
    verifier.parent.mkdir()
    shutil.copy(verify_proof.__file__, verifier)
    alone = subprocess.run([sys.executable, "-I", str(verifier), str(proof)],
                           cwd=verifier.parent, capture_output=True, text=True)  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    assert "collateral_registered of LSVAU2180N2183294" in alone.stdout
    bundle = json.loads(proof.read_text())
    bundle["entry"] = bundle["entry"].replace("沪A12345", "沪A12346")
    proof.write_text(json.dumps(bundle))
    alone = subprocess.run([sys.executable, "-I", str(verifier), str(proof)],
                           capture_output=True, text=True)  # fmt: skip
    assert alone.returncode == 1 and alone.stdout.startswith("NOT PROVEN: entry:")
    assert cli(tmp_path, env, "ledger", "check-proof", str(proof)).returncode == 1

    with sqlite3.connect(db) as raw:  # behind lienwatch's back
        raw.execute("UPDATE ledger_entries SET body = replace(body, '310001', '310009') "
                    "WHERE leaf_index = 2")  # fmt: skip
    tampered = cli(tmp_path, env, "ledger", "verify")
    assert tampered.returncode == 1
    assert "entry 2: its content is not what was recorded" in tampered.stdout.splitlines()


def test_the_standalone_verifier_needs_only_hashlib_and_cryptography():
    tree = ast.parse(Path(verify_proof.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert imported <= {"__future__", "base64", "hashlib", "json", "sys", "typing",
                        "cryptography"}  # fmt: skip
