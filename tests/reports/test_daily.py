"""`lienwatch report` on a small seeded book (the demo's database): every figure against an
independent computation in SQL or plain Python, both languages, CSV and JSON, no external
reference, the PDF's pages, and the scheduler's e-mail to a real SMTP receiver."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

import lienwatch.workforce
from lienwatch.config import Settings
from lienwatch.jobs import REPORT, daily_report, scheduler_jobs
from lienwatch.reports.daily import render
from lienwatch.reports.figures import OFFLINE_SHOWN
from lienwatch.reports.i18n import CATALOGUE, LANGUAGES
from lienwatch.store.db import make_engine, session_factory
from tests.conftest import IN_CI, TEST_NOW
from tests.receivers import smtp_server
from tests.test_cli import run

LOANS, DAYS, SEED = 200, 30, 7
SECTIONS = ("s_portfolio", "s_delinquency", "s_collateral", "s_followup", "s_models",
            "s_ledger")  # fmt: skip
CHARTS = ("c_buckets", "c_roll", "c_vintage30", "c_province", "c_trend_balance", "c_grades",
          "c_scorecard", "c_capacity", "c_workload", "c_league")  # fmt: skip


@pytest.fixture(scope="module")
def book(tmp_path_factory, small_demo):
    """A copy of the session's small demo (the report's tests write into its database): the
    folder, the database and its business day."""
    demo, summary = small_demo
    assert (summary["loans"], summary["days"], summary["seed"]) == (LOANS, DAYS, SEED)
    folder = tmp_path_factory.mktemp("book")
    shutil.copytree(demo / "lienwatch-demo", folder / "out")
    return folder, folder / "out" / "lienwatch.sqlite3", date.fromisoformat(summary["as_of"])


def report(folder: Path, database: Path, *args: str):
    return run(*args, cwd=folder, env={"LIENWATCH_DATABASE_URL": f"sqlite:///{database}"})


@pytest.fixture(scope="module")
def written(book):
    """`lienwatch report` in both languages; the figures of the English one."""
    folder, database, day = book
    for lang in LANGUAGES:
        result = report(folder, database, "report", "--as-of", day.isoformat(), "--lang", lang,
                        "--out", str(folder / lang))  # fmt: skip
        assert result.returncode == 0, result.stderr
    return json.loads((folder / "en" / "figures.json").read_text(encoding="utf-8"))


def test_portfolio_figures_are_the_snapshots(book, written):
    _, database, day = book
    db = sqlite3.connect(database)
    loans, outstanding, ead, unsecured = db.execute(
        "SELECT COUNT(*), SUM(outstanding_principal), SUM(ead), SUM(unsecured) "
        "FROM loan_snapshots WHERE as_of = ?", (day.isoformat(),)).fetchone()  # fmt: skip
    assert written["portfolio"]["totals"] == {
        "loans": loans, "outstanding": outstanding, "ead": ead, "unsecured": unsecured}
    assert loans == LOANS
    for column, key in (("product", "product"), ("booked_province", "province")):
        by = dict(db.execute(
            f"SELECT l.{column}, SUM(s.outstanding_principal) FROM loan_snapshots s "
            "JOIN loans l ON l.id = s.loan_id WHERE s.as_of = ? GROUP BY 1",
            (day.isoformat(),)).fetchall())  # fmt: skip
        table = written["portfolio"][f"by_{key}"]
        assert {row[key]: row["outstanding"] for row in table} == by
    previous = db.execute("SELECT MAX(as_of) FROM loan_snapshots WHERE as_of < ?",
                          (day.isoformat(),)).fetchone()[0]  # fmt: skip
    assert written["previous"] == previous
    before = db.execute("SELECT SUM(unsecured) FROM loan_snapshots WHERE as_of = ?",
                        (previous,)).fetchone()[0]  # fmt: skip
    assert written["portfolio"]["changes"]["unsecured"] == unsecured - before


def test_delinquency_figures_are_the_snapshots(book, written):
    _, database, day = book
    db = sqlite3.connect(database)
    rows = db.execute("SELECT loan_id, bucket, dpd, outstanding_principal FROM loan_snapshots "
                      "WHERE as_of = ?", (day.isoformat(),)).fetchall()  # fmt: skip
    buckets = {r["bucket"]: (r["loans"], r["outstanding"])
               for r in written["delinquency"]["buckets"] if r["loans"]}  # fmt: skip
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, bucket, _, outstanding in rows:
        expected[bucket][0] += 1
        expected[bucket][1] += outstanding
    assert buckets == {b: tuple(v) for b, v in expected.items()}
    late = sum(o for _, _, dpd, o in rows if dpd >= 30)
    totals = written["delinquency"]["totals"]
    assert totals["dpd30_balance"] == late
    assert totals["dpd30_share"] == pytest.approx(late / sum(o for *_, o in rows))
    trend = {r["day"]: r["loans"] for r in written["trend"]}
    assert trend == dict(db.execute(
        "SELECT as_of, COUNT(*) FROM loan_snapshots WHERE as_of > ? GROUP BY as_of",
        ((day - timedelta(days=60)).isoformat(),)).fetchall())  # fmt: skip


def test_roll_rates_recomputed_from_month_ends(book, written):
    """Each loan's last snapshot of a month, then a month later: deeper is a roll, M0 a cure."""
    _, database, _ = book
    db = sqlite3.connect(database)
    last: dict[tuple[int, str], tuple[str, str, int]] = {}
    for loan, as_of, bucket, outstanding in db.execute(
        "SELECT loan_id, as_of, bucket, outstanding_principal FROM loan_snapshots ORDER BY as_of"
    ):
        last[loan, as_of[:7]] = (as_of, bucket, outstanding)
    order = ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"]
    checked = 0
    for row in written["delinquency"]["roll_rates"]:
        month = row["month"][:7]
        following = (date.fromisoformat(row["month"]) + timedelta(days=32)).isoformat()[:7]
        pairs = [(last[loan, month][2], last[loan, month][1], last[loan, following][1])
                 for loan, m in last if m == month and (loan, following) in last
                 and last[loan, month][1] == row["bucket"]]  # fmt: skip
        balance = sum(o for o, _, _ in pairs)
        rolled = sum(o for o, a, b in pairs if order.index(b) > order.index(a))
        cured = sum(o for o, a, b in pairs if b == "M0" and a != "M0")
        assert (row["loans"], row["balance"], row["rolled"], row["cured"]) == (
            len(pairs), balance, rolled, cured)
        checked += 1
    assert checked and written["delinquency"]["roll_matrix"]


def test_collateral_and_followup_figures(book, written):
    folder, database, day = book
    db = sqlite3.connect(database)
    at = datetime.fromisoformat(written["at"])
    alerts = db.execute("SELECT status, COUNT(*) FROM alerts GROUP BY status").fetchall()
    open_now = sum(n for status, n in alerts if status in ("open", "acknowledged"))
    assert written["collateral"]["totals"]["open_alerts"] == open_now
    assert sum(r["open"] for r in written["collateral"]["by_type"]) == open_now
    top = written["collateral"]["top"]
    assert 0 < len(top) <= 20
    assert [r["unsecured"] for r in top] == sorted((r["unsecured"] for r in top), reverse=True)
    # coverage is the one definition the CLI prints
    result = report(folder, database, "followup", "coverage", "--at", at.isoformat(),
                    "--since", (at - timedelta(days=30)).isoformat(), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    coverage = json.loads(result.stdout)
    assert written["followup"]["totals"]["coverage"] == coverage["coverage"]
    assert written["followup"]["totals"]["breaches"] == len(coverage["breaches"])
    assert written["ledger"]["installed"] and written["ledger"]["verification"]["ok"]
    assert day.isoformat() == written["as_of"]


def test_the_page_lists_the_longest_silent_trackers_and_counts_the_rest(written):
    offline = written["collateral"]["offline"]
    assert [r["last_fix"] or "" for r in offline] == sorted(r["last_fix"] or "" for r in offline)
    many = [{"device": f"D{n:03d}", "protocol": "jt808", "kind": "wired", "plate": f"P{n}",
             "last_fix": f"2026-01-{1 + n % 28:02d}T00:00:00+00:00"}
            for n in range(OFFLINE_SHOWN + 5)]  # fmt: skip
    figures = {**written, "collateral": {**written["collateral"], "offline": many}}
    html = render(figures, "en")
    assert sum(f"<td>D{n:03d}</td>" in html for n in range(len(many))) == OFFLINE_SHOWN
    assert "5 more in <code>tables/offline_trackers.csv</code>" in html


def test_the_models_section_is_the_books_grades_and_models(book, written):
    _, database, day = book
    models = written["models"]
    db = sqlite3.connect(database)
    graded = dict(db.execute("SELECT grade, COUNT(*) FROM loans WHERE grade IS NOT NULL AND "
                             "disbursed_on <= ? GROUP BY grade", (day.isoformat(),)))  # fmt: skip
    assert graded and {r["grade"]: r["loans"] for r in models["grades"]} == graded
    stability = models["stability"]
    assert sum(stability["reference"].values()) + sum(stability["recent"].values()) == sum(
        graded.values())
    assert models["behaviour"]["available"] or "month" in models["behaviour"]["why"]
    opened = db.execute("SELECT COUNT(*) FROM alerts WHERE type = 'payment_anomaly' AND status "
                        "IN ('open', 'acknowledged')").fetchone()[0]  # fmt: skip
    assert models["payment_anomalies"]["open"] == opened
    assert models["rings"]["candidate_rings"] >= 1  # the simulator plants rings
    aucs = []
    for when in (day.isoformat(), written["previous"]):  # `risk behaviour` is the same verb
        judged = report(book[0], database, "risk", "behaviour", "--as-of", when, "--json")
        aucs.append(json.loads(judged.stdout)["auc"] if judged.returncode == 0 else None)
    assert models["changes"]["auc"] == (None if None in aucs else round(aucs[0] - aucs[1], 4))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_html_in_both_languages_is_self_contained(book, written, lang):
    folder, _, _ = book
    html = (folder / lang / "report.html").read_text(encoding="utf-8")
    index = LANGUAGES.index(lang)
    for key in (*SECTIONS, "changes"):
        assert CATALOGUE[key][index] in html, key
    for key in CHARTS:
        title = CATALOGUE[key][index].split("{")[0]
        assert title in html, key
    assert html.count("<svg") >= 5
    # nothing outside: no link, script or stylesheet reference but the SVG namespace
    stripped = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|<script|<link|@import|url\(|src=", stripped)
    other = CATALOGUE["s_delinquency"][1 - index]
    assert other not in html


class _Text(HTMLParser):
    """The words a reader sees: the text outside styles, SVG titles, ``<code>`` (commands,
    file names, keys, evidence as recorded) and ``class="id"`` (identifiers the data holds:
    agents, teams, products, plates)."""

    VOID = frozenset({"br", "meta", "line", "rect", "path", "circle", "polyline", "polygon",
                      "img", "hr"})  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.hidden: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            classes = (dict(attrs).get("class") or "").split()
            self.hidden.append(tag in ("style", "code", "title") or "id" in classes)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.hidden:
            self.hidden.pop()

    def handle_data(self, data: str) -> None:
        if not any(self.hidden):
            self.parts.append(data)


#: Names read the same in Chinese: the product, measures known by their English initials,
#: the map data's source.
NAMES = {"lienwatch", "PSI", "UTC", "CSV", "JSON", "AUC", "KS", "SLA", "GPS", "SMS", "IV",
         "Natural", "Earth", "Ed25519"}  # fmt: skip


def test_the_chinese_report_has_no_untranslated_english(book, written):
    """Every word a reader sees in the Chinese report is Chinese, a figure or a name; no
    English text of the catalogue appears in it (the behaviour score's "cannot judge yet"
    line was English once)."""
    folder, _, _ = book
    html = (folder / "zh" / "report.html").read_text(encoding="utf-8")
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.parts)
    workforce = written["followup"]["workforce"]
    people = {a["agent"] for t in (workforce["league"], workforce["last_month"])
              for a in t["agents"]}  # the league's chart names its agents  # fmt: skip
    for name in sorted(people, key=len, reverse=True):
        text = text.replace(name, " ")
    words = set(re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text)) - NAMES
    assert words == set(), f"untranslated English: {sorted(words)}"
    english = {en.split("{")[0].strip() for en, zh in CATALOGUE.values() if en != zh}
    leaked = sorted(e for e in english if len(e) > 3 and re.search(r"[a-z]{3}", e) and e in text)
    assert leaked == []
    assert CATALOGUE["behaviour_score"][1] in html
    shown = [a["evidence"] for row in written["collateral"]["top"] for a in row["alerts"]]
    assert shown, "the demo's top vehicles carry alerts with evidence"
    for evidence in shown:  # the rule, why it fired and every label in Chinese
        assert str(escape(evidence["why"])) not in html
        assert CATALOGUE[f"why:{evidence['rule']}"][1] in html
        assert {f"ev:{key}" for key in evidence} <= set(CATALOGUE), evidence.keys()
    behaviour = written["models"]["behaviour"]
    if not behaviour["available"]:
        assert behaviour["why"] not in html
        assert CATALOGUE[f"behaviour_{behaviour['reason']}"][1].split("{")[0] in html


def test_the_followup_section_has_the_league_and_the_capacity_forecast(book, written):
    """The league of the report's month to date and of the month before (teams' totals are
    their agents'), the forecast's pools and breaches, in both languages and as CSV."""
    folder, _, day = book
    workforce = written["followup"]["workforce"]
    league, last = workforce["league"], workforce["last_month"]
    assert league["month"] == day.isoformat()[:7] and last["month"] < league["month"]
    for table in (league, last):
        totals: dict[str, int] = defaultdict(int)
        for agent in table["agents"]:
            totals[agent["team"]] += agent["total"]
            assert sum(agent["by_act"].values()) == agent["total"]
        assert dict(totals) == table["teams"]
    assert last["agents"], "the demo's agents earned points in the month before"
    capacity = workforce["capacity"]
    assert capacity["days"] == 7 and capacity["pools"]
    assert all(p["needed"] >= 0 and p["rostered"] >= 0 for p in capacity["pools"])
    for lang in LANGUAGES:
        html = (folder / lang / "report.html").read_text(encoding="utf-8")
        index = LANGUAGES.index(lang)
        for key in ("incentives", "capacity", "scorecard_stability"):
            assert CATALOGUE[key][index] in html, (lang, key)
    tables = folder / "en" / "tables"
    with (tables / "incentives_last_month.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["agent"], int(r["total"])) for r in rows] == [
        (a["agent"], a["total"]) for a in last["agents"]]
    with (tables / "capacity.csv").open(encoding="utf-8") as handle:
        assert [r["pool"] for r in csv.DictReader(handle)] == [
            p["pool"] for p in capacity["pools"]]


def test_the_capacity_forecast_is_as_of_the_report_s_day(book, written):
    """An earlier --as-of forecasts from its own moment: its days, and only loans whose
    trigger was open then (opened by, not resolved by, that moment) forecast to breach."""
    folder, database, day = book
    earlier = (day - timedelta(days=7)).isoformat()
    result = report(folder, database, "report", "--as-of", earlier, "--lang", "en", "--out",
                    str(folder / "earlier"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    then = json.loads(result.stdout)
    db = sqlite3.connect(database)
    for figures in (written, then):
        capacity = figures["followup"]["workforce"]["capacity"]
        at = datetime.fromisoformat(figures["at"])
        assert capacity["from"] == at.astimezone(ZoneInfo(figures["time_zone"])).date().isoformat()
        moment = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        open_then = {ref for (ref,) in db.execute(
            "SELECT l.ref FROM triggers t JOIN loans l ON l.id = t.loan_id WHERE t.opened_at "
            "<= ? AND (t.resolved_at IS NULL OR t.resolved_at > ?)", (moment, moment))}  # fmt: skip
        assert {b["loan"] for b in capacity["breaches"]} <= open_then
    now, before = (f["followup"]["workforce"]["capacity"] for f in (written, then))
    assert (now["from"], now["pools"]) != (before["from"], before["pools"])


def test_the_scorecard_s_stability_reads_the_applications_the_demo_kept(book, written):
    _, database, day = book
    found = written["models"]["scorecard"]
    db = sqlite3.connect(database)
    since = (day - timedelta(days=90)).isoformat()
    kept = db.execute("SELECT COUNT(*) FROM applications WHERE decided_on > ? AND "
                      "decided_on <= ?", (since, day.isoformat())).fetchone()[0]  # fmt: skip
    linked = db.execute("SELECT COUNT(*) FROM applications a JOIN loans l ON l.id = a.loan_id "
                        "WHERE l.score = a.score AND l.grade = a.grade").fetchone()[0]
    graded = db.execute("SELECT COUNT(*) FROM loans WHERE grade IS NOT NULL").fetchone()[0]
    assert found["applications"] == kept > 0 and linked == graded
    assert found["since"] == since and found["characteristics"]
    assert all(c["psi"] is None or c["psi"] >= 0 for c in found["characteristics"])
    with (book[0] / "en" / "tables" / "scorecard_stability.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["characteristic"] for r in rows} == {"score"} | {
        c["name"] for c in found["characteristics"]}


def test_csv_of_every_table_and_json(book, written):
    folder, database, day = book
    tables = sorted(p.name for p in (folder / "en" / "tables").glob("*.csv"))
    assert {"buckets.csv", "roll_rates.csv", "vintages.csv", "alerts.csv", "uncovered.csv",
            "portfolio_by_province.csv", "top_exposure.csv"} <= set(tables)  # fmt: skip
    with (folder / "en" / "tables" / "buckets.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["bucket"]: int(r["outstanding"]) for r in rows} == {
        r["bucket"]: r["outstanding"] for r in written["delinquency"]["buckets"]}
    result = report(folder, database, "report", "--as-of", day.isoformat(), "--lang", "en",
                    "--out", str(folder / "again"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == written


def test_the_first_report_and_refusals(book):
    folder, database, _ = book
    db = sqlite3.connect(database)
    first = db.execute("SELECT MIN(as_of) FROM loan_snapshots").fetchone()[0]
    result = report(folder, database, "report", "--as-of", first, "--out", str(folder / "first"),
                    "--lang", "en")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert CATALOGUE["no_previous"][0] in (folder / "first" / "report.html").read_text("utf-8")
    gap = (date.fromisoformat(first) + timedelta(days=1)).isoformat()
    missing = report(folder, database, "report", "--as-of", gap, "--out", str(folder / "x"))
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"lienwatch: error: --as-of {gap}: no nightly run stored")
    empty = report(folder, folder / "empty.sqlite3", "report", "--out", str(folder / "y"))
    assert empty.returncode == 1 and "no nightly run stored" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) <= 2  # the new-database line and the error


def _needs_pdf_tools() -> None:
    problem = None
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        problem = f"WeasyPrint unusable: {exc}"
    if problem is None and shutil.which("pdftoppm") is None:
        problem = "pdftoppm (poppler-utils) is not installed"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true: {problem} (make installs it: .ci/system-packages)")
        pytest.skip(problem)


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGUAGES)
def test_pdf_pages_show_every_section_and_the_charts(book, lang, tmp_path):
    _needs_pdf_tools()
    from PIL import Image

    folder, database, day = book
    out = tmp_path / lang
    result = report(folder, database, "report", "--as-of", day.isoformat(), "--lang", lang,
                    "--out", str(out), "--pdf")  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "3", str(out / "report.pdf"),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3
    for page in pages:
        image = Image.open(page).convert("L")
        low, high = image.getextrema()
        assert high - low > 100, f"{page.name} is blank"
        dark = sum(image.histogram()[:128])
        assert dark > 0.002 * image.width * image.height, f"{page.name} is nearly blank"
    text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    flat = re.sub(r"\s+", "", text)
    index = LANGUAGES.index(lang)
    for key in SECTIONS:
        assert re.sub(r"\s+", "", CATALOGUE[key][index]) in flat, key
    shown = [k for k in CHARTS if re.sub(r"\s+", "", CATALOGUE[k][index].split("{")[0]) in flat]
    assert len(shown) >= 4, shown


def test_pdf_without_weasyprint_is_one_line(book, tmp_path):
    folder, database, _ = book
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "weasyprint.py").write_text("raise ImportError('no weasyprint here')\n")
    path = f"{shadow}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    result = run("report", "--pdf", "--out", str(tmp_path / "out"), cwd=folder,
                 env={"LIENWATCH_DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": path})
    assert result.returncode == 1
    assert result.stderr.startswith("lienwatch: error: --pdf needs WeasyPrint: pip install")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def smtp_receiver():
    with smtp_server() as server:
        yield server


def test_the_scheduled_job_mails_the_report_once_a_day(book, smtp_receiver, tmp_path):
    _, database, day = book
    inbox, port = smtp_receiver
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'copy.sqlite3'}",
        followup={"smtp_port": port, "email_sender": "risk@lender.example"},
        report={"send_at": time(7, 30), "recipients": ["ceo@lender.example",
                "risk@lender.example"], "lang": "zh", "out": tmp_path / "reports"},
        ledger={"key_file": tmp_path / "ledger.key"},  # the seal job makes it, not in the repo
    )  # fmt: skip
    shutil.copy(database, tmp_path / "copy.sqlite3")
    factory = session_factory(make_engine(settings.database_url))
    jobs = {job.name: job for job in scheduler_jobs(factory, settings)}
    assert REPORT in jobs
    assert jobs[REPORT].timetable.next_after(TEST_NOW).astimezone(ZoneInfo("Asia/Shanghai")) \
        .time() == time(7, 30)  # fmt: skip
    job = daily_report(factory, settings)
    first = job()
    assert (first["sent"] == 2 and first["day"] == day.isoformat()) or first["day"]
    assert job() == {"day": first["day"], "sent": 0, "already_sent": True}  # once a day
    assert len(inbox.received) == 2
    message = inbox.received[0]
    assert {m["To"] for m in inbox.received} == {"ceo@lender.example", "risk@lender.example"}
    assert message["From"] == "risk@lender.example"
    assert first["day"] in message["Subject"] and CATALOGUE["title"][1] in _decoded(message)
    html = next(part for part in message.walk() if part.get_content_type() == "text/html")
    assert CATALOGUE["s_collateral"][1] in html.get_payload(decode=True).decode("utf-8")
    assert (tmp_path / "reports" / first["day"] / "report.html").is_file()


def test_a_failed_send_is_tried_again(book, smtp_receiver, tmp_path):
    from lienwatch.errors import LienwatchError
    from tests.natsd import free_port

    _, database, day = book
    inbox, port = smtp_receiver
    shutil.copy(database, tmp_path / "copy.sqlite3")
    url = f"sqlite:///{tmp_path / 'copy.sqlite3'}"
    factory = session_factory(make_engine(url))

    def job(relay_port: int):
        return daily_report(factory, Settings(
            database_url=url, followup={"smtp_port": relay_port},
            report={"send_at": time(7, 30), "recipients": ["ceo@lender.example"],
                    "out": tmp_path / "reports"}))  # fmt: skip

    with pytest.raises(LienwatchError, match=r"^report e-mail through smtp 127.0.0.1:\d+: "):
        job(free_port())()  # nobody listening: the claim on the day is taken back
    assert job(port)() == {"day": day.isoformat(), "sent": 1,
                           "html": str(tmp_path / "reports" / day.isoformat() / "report.html")}
    assert len(inbox.received) == 1


def test_no_report_job_unless_send_at_is_set(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
                        ledger={"key_file": tmp_path / "ledger.key"})
    factory = session_factory(make_engine(settings.database_url))
    assert REPORT not in {job.name for job in scheduler_jobs(factory, settings)}
    with pytest.raises(ValueError, match="recipients is empty"):
        Settings(report={"send_at": time(7)})
    with pytest.raises(ValueError, match="is not an e-mail address"):
        Settings(report={"recipients": ["nobody"]})


def _decoded(message) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message["Subject"])))


def test_moment_of_the_report_is_the_end_of_the_next_day(book, written):
    day = date.fromisoformat(written["as_of"])
    end = datetime.combine(day + timedelta(days=2), time(), tzinfo=ZoneInfo("Asia/Shanghai"))
    assert datetime.fromisoformat(written["at"]) == min(TEST_NOW, end.astimezone(UTC))


def test_report_on_a_book_served_day_by_day(store_url, tmp_path):
    """Not a demo: a book booked, paid and watched through the store's own verbs, on SQLite
    and PostgreSQL."""
    from sqlalchemy import update

    from lienwatch.adapters.ledger_key import load_or_create_key
    from lienwatch.followup.strategy import shipped_strategy
    from lienwatch.ledger.entries import EntryKind
    from lienwatch.ledger.heads import raw_public_key
    from lienwatch.reports.daily import produce
    from lienwatch.services.ledger import LedgerService, record
    from lienwatch.services.servicing import run_nightly
    from lienwatch.servicing.catalogue import ProductCatalogue
    from lienwatch.store.db import transaction, write_deferred
    from lienwatch.store.repositories import PaymentRepository
    from lienwatch.store.tables import (
        Alert,
        Case,
        ContactAttempt,
        Device,
        LedgerEntry,
        Position,
    )
    from tests import factories

    engine = make_engine(store_url)
    factory = session_factory(engine)
    catalogue = ProductCatalogue.from_tables({"default": {"grace_days": 3}})
    with transaction(factory) as session:
        good, late = factories.loan(session, "L-good"), factories.loan(session, "L-late")
        for installment in good.installments[:4]:
            PaymentRepository(session).record(
                loan=good, external_id=f"pay-{installment.n}", paid_on=installment.due_date,
                amount=installment.principal + installment.interest)  # fmt: skip
        tracker = Device(ident="013800000001", protocol="jt808", kind="wired", model="t",
                         vehicle_id=late.vehicle_id, created_at=datetime(2026, 1, 1, tzinfo=UTC))
        session.add(tracker)
        session.flush()
        start = datetime(2026, 4, 29, tzinfo=UTC)
        session.add_all(Position(device_id=tracker.id, fix_time=start + timedelta(hours=h),
                                 lat=31.2 + h / 1000, lon=121.4 + h / 500) for h in range(30))
        session.add(Alert(type="power_cut", severity="critical", status="open",
                          vehicle_id=late.vehicle_id, loan_id=late.id, device_id=tracker.id,
                          started_at=start, evidence={"alarm": "power_cut"}))  # fmt: skip
        session.add_all([
            ContactAttempt(loan_id=late.id, channel="call", at=start, allowed=False,
                           rule="quiet_hours"),
            ContactAttempt(loan_id=late.id, channel="sms", at=start, allowed=True, rule="ok"),
            Case(loan_id=late.id, status="open", opened_at=start, hold="dispute"),
        ])  # fmt: skip
    for day in (date(2026, 3, 31), date(2026, 4, 29), date(2026, 4, 30)):
        with transaction(factory) as session:
            run_nightly(session, catalogue, as_of=day)
    key_file = tmp_path / "ledger.key"
    key = load_or_create_key(key_file)
    with transaction(factory) as session:  # 3 acts before the previous report, 2 after
        for n, moment in enumerate((start, start, start, *(start + timedelta(days=2),) * 2)):
            record(session, EntryKind.CASE_ACTION, subject="L-late", at=moment, by=None,
                   data={"n": n})  # fmt: skip
            write_deferred(session)
            session.execute(update(LedgerEntry).where(LedgerEntry.id == n + 1)
                            .values(recorded_at=moment))  # fmt: skip
            if n in (2, 4):
                LedgerService(session, key=key).seal(at=moment)
    for lang in LANGUAGES:
        written = produce(factory, out=tmp_path / lang, lang=lang, as_of=date(2026, 4, 30),
                          now=TEST_NOW, catalogue=catalogue, disclosure=True,
                          strategy=shipped_strategy("cn"), ledger_key=key_file)  # fmt: skip
        assert CATALOGUE["s_ledger"][LANGUAGES.index(lang)] in written.html.read_text("utf-8")
    engine.dispose()
    figures = written.figures
    assert figures["previous"] == "2026-04-29"
    ledger = figures["ledger"]  # the moment is 05-01 16:00 UTC, the previous 04-30 16:00
    assert (ledger["tree_size"], ledger["head"]["tree_size"]) == (5, 5)
    assert ledger["public_key"] == raw_public_key(key.public_key()).hex()
    assert ledger["verification"] == {"ok": True, "entries": 5, "heads": 2, "pending": 0,
                                      "problems": []}  # fmt: skip
    assert ledger["changes"] == {"entries": 2, "heads": 1} and ledger["signatures_checked"]
    html = (tmp_path / "en" / "report.html").read_text("utf-8")
    assert ledger["head"]["root"] in html and ledger["public_key"] in html
    assert str(escape(CATALOGUE["verified_note"][0])) in html
    with transaction(factory) as session:  # an entry edited behind the ledger's back
        session.execute(update(LedgerEntry).where(LedgerEntry.leaf_index == 3)
                        .values(body=LedgerEntry.body + " "))  # fmt: skip
    tampered = produce(factory, out=tmp_path / "tampered", lang="zh", as_of=date(2026, 4, 30),
                       now=TEST_NOW, strategy=shipped_strategy("cn"), ledger_key=key_file)
    problems = tampered.figures["ledger"]["verification"]["problems"]
    assert problems and problems[0].startswith("entry 3: ")
    page = tampered.html.read_text("utf-8")
    assert CATALOGUE["not_verified"][1] in page and str(escape(problems[0])) in page
    assert figures["portfolio"]["totals"]["loans"] == 2
    assert {r["bucket"]: r["loans"] for r in figures["delinquency"]["buckets"] if r["loans"]} \
        == {"M0": 1, "M3": 1}  # fmt: skip
    (top,) = figures["collateral"]["top"]
    assert (top["loan"], [a["type"] for a in top["alerts"]]) == ("L-late", ["power_cut"])
    assert len(top["track"]) == 30 and top["track"][0] == [121.4, 31.2]
    # the report's moment is the end of the day after (05-01 16:00 UTC): the last fix (04-30
    # 05:00) is 59 hours old, not yet offline
    assert figures["at"] == "2026-05-01T16:00:00+00:00"
    assert figures["collateral"]["totals"]["offline_trackers"] == 0
    march = {r["bucket"]: r for r in figures["delinquency"]["roll_rates"]}
    assert march["M2"]["roll_rate"] == 1.0 and march["M0"]["roll_rate"] == 0.0
    # the disclosure pack: conduct in the period, a dictionary entry for every column
    pack = {p.stem: list(csv.reader(p.open(encoding="utf-8"))) for p in written.disclosure}
    assert pack["refusals_by_rule"] == [["rule", "channel", "refused"],
                                        ["quiet_hours", "call", "1"]]  # fmt: skip
    assert sorted(pack["contact_attempts"][1:]) == [["call", "lender", "1", "0", "1", "0", "0"],
                                                    ["sms", "lender", "1", "1", "0", "0", "0"]]
    assert pack["disputes"][1:] == [["dispute", "1"]]
    quality = pack["portfolio_quality"][1:]
    outstanding = {r["bucket"]: r["outstanding"] for r in figures["delinquency"]["buckets"]}
    assert [row[:4] for row in quality] == [["new-car-36", b, "1", str(outstanding[b])]
                                            for b in ("M0", "M3")]  # fmt: skip
    totals = figures["portfolio"]["totals"]
    assert [sum(int(row[i]) for row in quality) for i in (4, 5)] == [totals["ead"],
                                                                     totals["unsecured"]]
    described = {(t, c) for t, c, _ in pack["data_dictionary"][1:]}
    for name, rows in pack.items():
        if name != "data_dictionary":
            assert {(name, column) for column in rows[0]} <= described, name



def test_send_from_the_command_line(book, smtp_receiver, tmp_path):
    folder, database, day = book
    inbox, port = smtp_receiver
    env = {"LIENWATCH_DATABASE_URL": f"sqlite:///{database}",
           "LIENWATCH_FOLLOWUP__SMTP_PORT": str(port),
           "LIENWATCH_REPORT__RECIPIENTS": '["analyst@lender.example"]'}  # fmt: skip
    result = run("report", "--lang", "en", "--out", str(tmp_path), "--send", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("sent to analyst@lender.example")
    (message,) = inbox.received
    assert message["Subject"] == f"Daily risk warning report {day}"
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    assert "Coverage:" in text.get_payload(decode=True).decode("utf-8")
    env["LIENWATCH_REPORT__RECIPIENTS"] = "[]"
    refused = run("report", "--send", "--out", str(tmp_path), cwd=folder, env=env)
    assert refused.returncode == 1
    assert refused.stderr == "lienwatch: error: --send: [report] recipients is empty in the " \
        "configuration\n"  # fmt: skip


def test_the_league_and_forecast_use_the_workforce_files_in_force(book, written, tmp_path):
    """`[workforce] incentives` and `capacity_rules` name the files the report's league and
    forecast use (as `followup incentives` and `followup capacity` do), not the shipped ones."""
    folder, database, day = book
    shipped = Path(lienwatch.workforce.__file__).parent / "rules"
    scheme = (shipped / "incentives.toml").read_text(encoding="utf-8")
    custom = tmp_path / "incentives.toml"
    custom.write_text(scheme.replace('name = "incentives-default"', 'name = "lender-2027"')
                      .replace("version = 1", "version = 3")
                      .replace("cure = 10 ", "cure = 1000 "), encoding="utf-8")  # fmt: skip
    env = {"LIENWATCH_DATABASE_URL": f"sqlite:///{database}",
           "LIENWATCH_WORKFORCE__INCENTIVES": str(custom)}  # fmt: skip
    result = run("report", "--as-of", day.isoformat(), "--lang", "en", "--out",
                 str(tmp_path / "out"), cwd=folder, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "out" / "figures.json").read_text(encoding="utf-8"))
    league = figures["followup"]["workforce"]["last_month"]
    shipped_league = written["followup"]["workforce"]["last_month"]
    assert "lender-2027" in str(league["scheme"]) and "3" in str(league["scheme"])
    cures = [a["by_act"].get("cure", 0) for a in league["agents"]]
    shipped_cures = [a["by_act"].get("cure", 0) for a in shipped_league["agents"]]
    assert any(shipped_cures) and sorted(cures) == sorted(100 * n for n in shipped_cures)
    env["LIENWATCH_WORKFORCE__INCENTIVES"] = str(tmp_path / "missing.toml")
    refused = run("report", "--as-of", day.isoformat(), "--out", str(tmp_path / "no"),
                  cwd=folder, env=env)  # fmt: skip
    assert refused.returncode != 0 and "missing.toml" in refused.stderr
