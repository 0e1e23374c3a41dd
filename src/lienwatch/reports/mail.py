"""Sending the daily report by e-mail over SMTP: the headline figures as text, report.html as
the HTML part (it is self-contained) and, when made, report.pdf attached.

The relay is the follow-up engine's e-mail relay (``[followup] smtp_host``, ``smtp_port``,
``email_sender``). The Message-ID is derived from the business day, the language and the
recipient, so a receiver can drop a duplicate; :func:`lienwatch.jobs.daily_report` makes sure
one report per day is sent by one process.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from lienwatch.domain.money import to_yuan
from lienwatch.errors import LienwatchError
from lienwatch.reports.daily import Written
from lienwatch.reports.i18n import Lang, Translator


def summary_text(figures: dict[str, Any], lang: Lang) -> str:
    """The report's headline figures as a few lines of plain text."""
    t = Translator(lang)
    p, d = figures["portfolio"]["totals"], figures["delinquency"]["totals"]
    c, u = figures["collateral"]["totals"], figures["followup"]["totals"]
    share = d["dpd30_share"]
    lines = [
        f"{t('title')} · {t('as_of')} {figures['as_of']}",
        "",
        f"{t('loans')}: {p['loans']:,}",
        f"{t('outstanding')}: ¥{to_yuan(p['outstanding']):,.2f}",
        f"{t('unsecured')}: ¥{to_yuan(p['unsecured']):,.2f}",
        f"{t('dpd30_share')}: {'—' if share is None else f'{100 * share:.1f} %'}",
        f"{t('open_alerts')}: {c['open_alerts']:,} ({t('new_alerts')} {c['new_alerts']:,})",
        f"{t('coverage')}: {100 * u['coverage']:.1f} % · {t('breaches')}: {u['breaches']:,} · "
        f"{t('uncovered')}: {u['uncovered']:,}",
    ]
    return "\n".join(lines) + "\n"


def send_report(
    written: Written,
    *,
    recipients: Sequence[str],
    lang: Lang,
    host: str,
    port: int,
    sender: str,
    timeout_s: float = 30.0,
) -> list[str]:
    """One message per recipient; returns their Message-IDs. A relay that cannot be reached
    or refuses raises :class:`LienwatchError` naming it."""
    figures = written.figures
    t = Translator(lang)
    html = written.html.read_text(encoding="utf-8")
    ids = []
    try:
        with smtplib.SMTP(host, port, timeout=timeout_s) as smtp:
            for to in recipients:
                email = EmailMessage()
                email["From"] = sender
                email["To"] = to
                email["Subject"] = f"{t('title')} {figures['as_of']}"
                email["Message-ID"] = (
                    f"<report.{figures['as_of']}.{lang}.{_safe(to)}@lienwatch>"
                )
                email.set_content(summary_text(figures, lang))
                email.add_alternative(html, subtype="html")
                if written.pdf is not None:
                    email.add_attachment(written.pdf.read_bytes(), maintype="application",
                                         subtype="pdf", filename=f"report-{figures['as_of']}.pdf")
                smtp.send_message(email)
                ids.append(str(email["Message-ID"]))
    except (OSError, smtplib.SMTPException) as exc:
        raise LienwatchError(f"report e-mail through smtp {host}:{port}: {exc}") from None
    return ids


def _safe(address: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "." for ch in address)
