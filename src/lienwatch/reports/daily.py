"""The daily risk warning report: figures → report.html (charts inline), CSV of every table,
figures.json and, with the ``pdf`` extra, report.pdf. ``lienwatch report``, the scheduler's
``report`` job and ``lienwatch demo`` all call :func:`produce`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from markupsafe import Markup
from sqlalchemy.orm import Session, sessionmaker

from lienwatch import __version__, clock
from lienwatch.adapters.ledger_key import load_public_key
from lienwatch.errors import LienwatchError
from lienwatch.followup.strategy import Strategy
from lienwatch.reports import charts
from lienwatch.reports.disclosure import write_disclosure
from lienwatch.reports.figures import OFFLINE_SHOWN, build_figures, report_period
from lienwatch.reports.html import environment
from lienwatch.reports.i18n import Lang, Translator
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.workforce.incentives import Scheme
from lienwatch.workforce.rules import CapacityRules

HTML, JSON, PDF, TABLES = "report.html", "figures.json", "report.pdf", "tables"


def day_folder(out: Path, day: date | str) -> Path:
    """The folder of ``day``'s report below ``[report] out`` (one folder per business day,
    named by its ISO date): where the command and the daily job write and the archive reads."""
    return out / (day if isinstance(day, str) else day.isoformat())


@dataclass(frozen=True, slots=True)
class Written:
    """The files of one report and its figures."""

    html: Path
    json: Path
    csv: tuple[Path, ...]
    pdf: Path | None
    figures: dict[str, Any]
    disclosure: tuple[Path, ...] = ()


def produce(
    factory: sessionmaker[Session],
    *,
    out: Path,
    strategy: Strategy,
    lang: Lang = "zh",
    as_of: date | None = None,
    now: datetime | None = None,
    time_zone: str = "Asia/Shanghai",
    catalogue: ProductCatalogue | None = None,
    pdf: bool = False,
    dated: bool = False,
    disclosure: bool = False,
    ledger_key: Path | None = None,
    rules: CapacityRules | None = None,
    scheme: Scheme | None = None,
) -> Written:
    """Compute the figures of the report for ``as_of`` (default: the last business day that
    ended by ``now``) in one read transaction and write the report into ``out`` (with
    ``dated``, into its sub-folder named by the business day); with ``disclosure`` also the
    disclosure pack (:mod:`lienwatch.reports.disclosure`) in ``disclosure/`` there.
    ``ledger_key`` is the ledger's key file (``[ledger] key_file``): when it exists, the
    heads' signatures are checked with its public key."""
    if pdf:
        from lienwatch.reports.pdf import require_renderer

        require_renderer()  # a missing extra is said before any database work
    pack: list[Path] = []
    with transaction(factory, write=False) as session:  # the figures and pack only read
        figures = figures_for(session, as_of=as_of, now=now or clock.now(), strategy=strategy,
                              time_zone=time_zone, catalogue=catalogue,
                              ledger_key=ledger_public_key(ledger_key), rules=rules,
                              scheme=scheme, written=written_figures(out, dated=dated))  # fmt: skip
        target = day_folder(out, figures["as_of"]) if dated else out
        if disclosure:
            pack = write_disclosure(session, day=figures["as_of"],
                                    at=datetime.fromisoformat(figures["at"]), out=target)
    return replace(write(figures, target, lang=lang, pdf=pdf), disclosure=tuple(pack))


def written_figures(out: Path, *, dated: bool) -> Callable[[date], dict[str, Any] | None]:
    """The figures a report already written below ``out`` holds for a business day (its
    ``figures.json``: in the day's folder when ``dated``, else in ``out`` itself if it is
    that day's), or None: what the next report compares itself with, read rather than
    computed again."""

    def read(day: date) -> dict[str, Any] | None:
        path = (day_folder(out, day) if dated else out) / JSON
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) and found.get("as_of") == day.isoformat() else None

    return read


def figures_for(
    session: Session,
    *,
    as_of: date | None,
    now: datetime,
    strategy: Strategy,
    time_zone: str,
    catalogue: ProductCatalogue | None = None,
    ledger_key: Ed25519PublicKey | None = None,
    rules: CapacityRules | None = None,
    scheme: Scheme | None = None,
    written: Callable[[date], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The figures of the report for ``as_of`` (default: the last business day that ended by
    ``now``), read in the caller's transaction; ``rules`` and ``scheme`` as in
    :func:`~lienwatch.reports.figures.build_figures`; ``written`` gives a report already
    written for a day (:func:`written_figures`), whose figures the changes since the previous
    report read instead of computing them again."""
    period = report_period(session, as_of=as_of, now=now, time_zone=time_zone)
    previous = written(period.previous_day) if written and period.previous_day else None
    return build_figures(session, period, strategy=strategy, catalogue=catalogue,
                         time_zone=time_zone, ledger_key=ledger_key, rules=rules,
                         scheme=scheme, previous=previous)  # fmt: skip


def ledger_public_key(path: Path | None) -> Ed25519PublicKey | None:
    """The public half of the ledger's key in ``path``, or None where the file is not (the
    report never makes a key)."""
    return None if path is None else load_public_key(path)


def write(figures: dict[str, Any], out: Path, *, lang: Lang = "zh", pdf: bool = False) -> Written:
    """Write report.html, figures.json and one CSV per table (in ``tables/``) into ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LienwatchError(f"--out {out}: {exc.strerror}") from None
    html = render(figures, lang)
    html_path = out / HTML
    html_path.write_text(html, encoding="utf-8")
    json_path = out / JSON
    json_path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", "utf-8")
    written = []
    (out / TABLES).mkdir(exist_ok=True)
    for name, (columns, rows) in tables(figures).items():
        path = out / TABLES / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        written.append(path)
    pdf_path = None
    if pdf:
        from lienwatch.reports.pdf import html_to_pdf

        pdf_path = out / PDF
        html_to_pdf(html, pdf_path)
    return Written(html_path, json_path, tuple(written), pdf_path, figures)


def tables(figures: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the report as (columns, rows); amounts in fen, shares as fractions."""
    p, d, c, f = (figures[k] for k in ("portfolio", "delinquency", "collateral", "followup"))
    money = ["loans", "outstanding", "ead", "unsecured"]
    kpis = f["kpis"]
    return {
        "portfolio_by_product": (["product", *money],
                                 [[r["product"], *(r[k] for k in money)] for r in p["by_product"]]),
        "portfolio_by_grade": (["grade", *money],
                               [[r["grade"], *(r[k] for k in money)] for r in p["by_grade"]]),
        "portfolio_by_province": (
            ["province", "name_en", "name_zh", *money],
            [[r["province"], r["name_en"], r["name_zh"], *(r[k] for k in money)]
             for r in p["by_province"]]),
        "buckets": (["bucket", "loans", "outstanding"],
                    [[r["bucket"], r["loans"], r["outstanding"]] for r in d["buckets"]]),
        "roll_rates": (
            ["month", "bucket", "loans", "balance", "rolled", "cured", "roll_rate", "cure_rate"],
            [[r[k] for k in ("month", "bucket", "loans", "balance", "rolled", "cured",
                             "roll_rate", "cure_rate")] for r in d["roll_rates"]]),
        "roll_matrix": (
            ["month", "bucket", *(r["bucket"] for r in d["roll_matrix"])],
            [[r["month"], r["bucket"], *r["to"].values()] for r in d["roll_matrix"]]),
        "vintages": (
            ["vintage", "months_on_book", "loans", "disbursed", "dpd30_balance", "dpd90_balance",
             "dpd30_share", "dpd90_share"],
            [[v[k] for k in ("vintage", "months_on_book", "loans", "disbursed", "dpd30_balance",
                             "dpd90_balance", "dpd30_share", "dpd90_share")]
             for v in d["vintages"]]),
        "alerts": (["type", "severity", "open", "new", "closed_since", "resolved",
                    "false_positive"],
                   [list(r.values()) for r in c["by_type"]]),
        "top_exposure": (
            ["loan", "plate", "unsecured", "dpd", "bucket", "alerts"],
            [[r["loan"], r["plate"], r["unsecured"], r["dpd"], r["bucket"],
              ";".join(a["type"] for a in r["alerts"])] for r in c["top"]]),
        "offline_trackers": (["device", "protocol", "kind", "plate", "last_fix"],
                             [list(r.values()) for r in c["offline"]]),
        "clusters": (["alert", "started_at", "province", "plate", "vehicles"],
                     [list(r.values()) for r in c["clusters"]]),
        "breaches": (["loan", "trigger_id", "repossession_id", "kind", "deadline_at", "team"],
                     [list(b.values()) for b in kpis["coverage"]["breaches"]]),
        "uncovered": (["loan", "kind", "detail"],
                      [list(u.values()) for u in kpis["coverage"]["uncovered"]]),
        "teams": (["team", "contacts", "rpc", "promises", "sla_breaches"],
                  [[name, *(v[k] for k in ("contacts", "rpc", "promises", "sla_breaches"))]
                   for name, v in kpis["teams"].items()]),
        "agents": (["agent", "contacts", "rpc", "promises", "sla_breaches"],
                   [[name, *(v[k] for k in ("contacts", "rpc", "promises", "sla_breaches"))]
                    for name, v in kpis["agents"].items()]),
        "repossessions": (["status", "count", "proceeds", "costs_recovered", "to_loan",
                           "deficiency"],
                          [list(r.values()) for r in f["repossessions"]]),
        "trend": (["day", "loans", "outstanding", "unsecured", "dpd30_share"],
                  [list(r.values()) for r in figures["trend"]]),
        "grades": (["grade", "loans", "outstanding", "defaulted", "default_rate"],
                   [list(r.values()) for r in figures["models"]["grades"]]),
        "kpi_rates": (["measure", "rate", "ci_low", "ci_high", "hits", "total"],
                      [[name, *_rate(kpis.get(name))] for name in KPI_RATES]),
        "champion_challenger": (
            ["arm", "rate", "ci_low", "ci_high", "hits", "total"],
            [[arm, *_rate(kpis["champion_challenger"][arm])]
             for arm in ("champion", "challenger")]
            + [["difference", kpis["champion_challenger"]["difference"],
                *(kpis["champion_challenger"]["ci"] or [None, None]), None, None]]),
        "behaviour_calibration": (
            ["band", "loans", "predicted", "observed"],
            [[r["band"], r["loans"], r["predicted"], r["observed"]]
             for r in figures["models"]["behaviour"].get("calibration", [])]),
        **_workforce_tables(f["workforce"]),
        **_scorecard_tables(figures["models"].get("scorecard")),
    }  # fmt: skip


#: The follow-up rates the report prints, as ``kpis`` names them.
KPI_RATES = ("contact_rate", "rpc_rate", "promise_rate", "promise_kept_rate", "cure_rate",
             "sla_breach_rate")  # fmt: skip


def _rate(measure: dict[str, Any] | None) -> list[Any]:
    """rate, interval and counts of one measure (empty over nothing)."""
    if not measure:
        return [None, None, None, 0, 0]
    low, high = measure["ci"] or (None, None)
    return [measure["rate"], low, high, measure["hits"], measure["total"]]


def _workforce_tables(w: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    def league(table: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        return (["month", "agent", "team", "total", "acts", "by_act"],
                [[table["month"], a["agent"], a["team"], a["total"], a["acts"],
                  ";".join(f"{k}={v}" for k, v in a["by_act"].items())]
                 for a in table["agents"]])  # fmt: skip

    c = w["capacity"]
    return {
        "incentives_month": league(w["league"]),
        "incentives_last_month": league(w["last_month"]),
        "incentives_teams": (["month", "team", "total"],
                             [[t["month"], team, total] for t in (w["league"], w["last_month"])
                              for team, total in t["teams"].items()]),
        "capacity": (["pool", "team", "skill", "tasks", "rostered", "needed", "shortfall",
                      "breaches"],
                     [[p["pool"], p["team"], p["skill"], sum(p["tasks"].values()), p["rostered"],
                       p["needed"], p["shortfall"], p["breaches"]] for p in c["pools"]]),
        "capacity_breaches": (["loan", "channel", "ladder", "due", "deadline", "exposure"],
                              [[b.get(k) for k in ("loan", "channel", "ladder", "due",
                                                   "deadline", "exposure")]
                               for b in c["breaches"]]),
    }  # fmt: skip


def _scorecard_tables(s: dict[str, Any] | None) -> dict[str, tuple[list[str], list[list[Any]]]]:
    if not s:
        return {}
    rows = [["score", b["label"], b["reference"], b["actual"], s["score"]["psi"]]
            for b in s["score"]["bins"]]
    rows += [[c["name"], b["label"], b["reference"], b["actual"], c["psi"]]
             for c in s["characteristics"] for b in c["bins"]]
    return {"scorecard_stability": (["characteristic", "attribute", "reference", "actual",
                                     "psi"], rows)}  # fmt: skip


def _wan(fen: float) -> str:
    """Fen as 万元 (10,000 yuan) for chart axes."""
    value = fen / 1_000_000
    return f"{value:,.0f}" if value >= 100 or value == 0 else f"{value:,.1f}"


def _next_month(month: str) -> str:
    """``2026-10-01`` → ``2026-11``."""
    first = date.fromisoformat(month)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1).isoformat()[:7]


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.1 or share == 0 else f"{100 * share:.1f}%"


def _charts(figures: dict[str, Any], t: Translator, lang: Lang) -> dict[str, Markup]:
    d, p = figures["delinquency"], figures["portfolio"]
    buckets = [r["bucket"] for r in d["buckets"]]
    found: dict[str, Markup] = {
        "buckets": charts.bars(
            buckets, [r["outstanding"] for r in d["buckets"]], title=t("c_buckets"),
            y_label=t("wan_yuan"), fmt=_wan,
            colours=[charts.bucket_colour(i) for i in range(len(buckets))],
            notes=[f"{r['loans']:,}" for r in d["buckets"]]),
        "province": charts.choropleth(
            {r["province"]: r["outstanding"] for r in p["by_province"]},
            {r["province"]: r["name_zh" if lang == "zh" else "name_en"]
             for r in p["by_province"]},
            title=t("c_province"), unit=t("wan_yuan"), fmt=_wan, note=t("attribution")),
    }  # fmt: skip
    grades = figures["models"]["grades"]
    if grades:
        found["grades"] = charts.bars(
            [r["grade"] for r in grades], [r["loans"] for r in grades], title=t("c_grades"),
            y_label=t("loans"), fmt=lambda v: f"{v:,.0f}",
            colours=[charts.bucket_colour(i) for i in range(len(grades))],
            notes=[f"{t('defaulted')} {_percent(r['default_rate'])}" for r in grades])  # fmt: skip
    if d["roll_matrix"]:
        rows = [r for r in d["roll_matrix"] if r["loans"]]
        found["roll"] = charts.heatmap(
            [r["bucket"] for r in rows], buckets, [[r["to"][b] for b in buckets] for r in rows],
            title=t("c_roll", month=d["roll_matrix"][0]["month"][:7],
                    next=_next_month(d["roll_matrix"][0]["month"])),
            x_label=t("to_bucket"), y_label=t("from_bucket"))  # fmt: skip
    if d["vintages"]:
        for key, share in (("vintage30", "dpd30_share"), ("vintage90", "dpd90_share")):
            series: dict[str, list[tuple[float, float]]] = {}
            for v in d["vintages"]:
                series.setdefault(v["vintage"], []).append((v["months_on_book"], v[share]))
            recent = dict(list(series.items())[-len(charts.SERIES):])
            found[key] = charts.lines(recent, title=t(f"c_{key}"), x_label=t("months_on_book"),
                                      y_label=t("share"), y_fmt=_percent)  # fmt: skip
    trend = figures["trend"]
    if trend:
        first = date.fromisoformat(trend[0]["day"])

        def day_label(x: float) -> str:
            return date.fromordinal(first.toordinal() + round(x)).isoformat()[5:]

        def days(key: str) -> list[tuple[float, float]]:
            return [((date.fromisoformat(r["day"]) - first).days, r[key] or 0) for r in trend]

        found["trend_balance"] = charts.lines(
            {t("outstanding"): days("outstanding"), t("unsecured"): days("unsecured")},
            title=t("c_trend_balance"), x_label=t("day"), y_label=t("wan_yuan"), y_fmt=_wan,
            x_fmt=day_label)  # fmt: skip
        found["trend_dpd30"] = charts.lines(
            {t("dpd30_share"): days("dpd30_share")}, title=t("c_trend_dpd30"),
            x_label=t("day"), y_label=t("share"), y_fmt=_percent, x_fmt=day_label,
            colours=[charts.bucket_colour(6)])  # fmt: skip
    found.update(_model_and_workforce_charts(figures, t))
    alerts: dict[str, int] = {}
    for row in figures["collateral"]["by_type"]:
        alerts[row["type"]] = alerts.get(row["type"], 0) + row["open"]
    if alerts:
        found["alerts"] = charts.bars(
            [t.code(k) for k in alerts], list(alerts.values()), title=t("c_alerts"),
            y_label=t("count"), fmt=lambda n: f"{n:,.0f}",
            colours=[charts.SERIES[i % len(charts.SERIES)] for i in range(len(alerts))],
        )
    return found


def _model_and_workforce_charts(figures: dict[str, Any], t: Translator) -> dict[str, Markup]:
    """The scorecard's PSI by characteristic, the staffing each pool needs beside what it
    has, and the forecast workload per day by channel."""
    found: dict[str, Markup] = {}
    scorecard = figures["models"].get("scorecard")
    if scorecard and scorecard["applications"]:
        shown = [c for c in scorecard["characteristics"] if c["psi"] is not None]
        psis = [scorecard["score"]["psi"] or 0.0, *(c["psi"] for c in shown)]
        found["scorecard"] = charts.bars(
            [t("score"), *(t.code(c["name"]) for c in shown)], psis, title=t("c_scorecard"),
            y_label=t("psi"), fmt=lambda v: f"{v:.2f}",
            colours=[_psi_colour(v) for v in psis])  # fmt: skip
    workforce = figures["followup"]["workforce"]
    league = workforce["league"] if workforce["league"]["agents"] else workforce["last_month"]
    if league["agents"]:
        shown = league["agents"][:LEAGUE_SHOWN]
        found["league"] = charts.bars(
            [a["agent"] for a in shown], [a["total"] for a in shown],
            title=t("c_league", month=league["month"]), y_label=t("points"),
            fmt=lambda v: f"{v:+,.0f}" if v else "0",
            colours=[charts.bucket_colour(0 if a["total"] >= 0 else 6) for a in shown])  # fmt: skip
    capacity = workforce["capacity"]
    if capacity["pools"]:
        pools = capacity["pools"]
        found["capacity"] = charts.bars(
            [f"{p['team'] or t('any_team')} · {t.code(p['skill'])}" for p in pools],
            [p["needed"] for p in pools], title=t("c_capacity", days=capacity["days"]),
            y_label=t("agents"), fmt=lambda v: f"{v:g}",
            colours=[charts.bucket_colour(6 if p["shortfall"] else 0) for p in pools],
            notes=[t("has_agents", n=p["rostered"]) for p in pools])  # fmt: skip
    if capacity["workload"]:
        first = date.fromisoformat(capacity["from"])

        def day_label(x: float) -> str:
            return date.fromordinal(first.toordinal() + round(x)).isoformat()[5:]

        found["workload"] = charts.lines(
            {t.code(channel): [((date.fromisoformat(d) - first).days, n)
                               for d, n in sorted(days.items())]
             for channel, days in capacity["workload"].items()},
            title=t("c_workload"), x_label=t("day"), y_label=t("tasks"),
            y_fmt=lambda v: f"{v:,.0f}", x_fmt=day_label)  # fmt: skip
    return found


LEAGUE_SHOWN = 12  # agents in the league's chart (all are in the table)


def _psi_colour(value: float) -> str:
    """Green under 0.1 (stable), amber to 0.25, red over (a shift)."""
    return "#2ca02c" if value < 0.1 else "#ff7f0e" if value <= 0.25 else "#d62728"


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    """One entry of an alert's evidence as the report prints it: its label, and its value as
    text of the report's language (``text``) or as the data recorded it."""

    label: str
    label_known: bool  # a label of the catalogue; else the evidence's own key, shown as code
    value: str
    text: bool


def evidence_lines(evidence: dict[str, Any], t: Translator) -> list[EvidenceLine]:
    """An alert's evidence in ``t``'s language where it is product text (the rule's name,
    why it fired, the labels, the fixes' summary); the data (times, places, thresholds by
    their configuration key, addresses) as recorded."""
    rule = str(evidence.get("rule", ""))
    lines = []
    for key, value in evidence.items():
        label = t.code(key, "ev")
        if key in ("rule", "why") and t.knows(rule, key):
            shown, text = t.code(rule, key), True
        elif key == "fixes" and isinstance(value, list) and value:
            times = sorted(str(fix.get("time", "")).replace("T", " ")[:16] for fix in value)
            shown, text = t("ev_fixes", n=len(value), first=times[0], last=times[-1]), True
        else:
            shown = value if isinstance(value, str) else json.dumps(
                value, ensure_ascii=False, separators=(", ", ": "))
            text = False
        lines.append(EvidenceLine(label, t.knows(key, "ev"), shown, text))
    return lines


def render(figures: dict[str, Any], lang: Lang = "zh") -> str:
    """The self-contained report.html (styles and charts inline, no external reference)."""
    t = Translator(lang)
    tracks = {
        row["loan"]: charts.track(row["track"], label=t("no_track") if not row["track"]
                                  else f"{row['plate']} {t('track')}")
        for row in figures["collateral"]["top"]
    }  # fmt: skip
    return environment.get_template("daily.html").render(
        f=figures, t=t, code=t.code, lang=lang, charts=_charts(figures, t, lang),
        evidence=lambda found: evidence_lines(found, t),
        tracks=tracks, version=__version__, offline_shown=OFFLINE_SHOWN,
        generated=clock.now().strftime("%Y-%m-%d %H:%M UTC"),
    )

