"""Providers as entry-point plugins chosen per channel by ``[followup.providers]``, and the
letter channel (guarded like any contact, but not bound by quiet hours)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from lienwatch.adapters.providers import ENTRY_POINT_GROUP, build_providers, provider_factories
from lienwatch.adapters.senders import LogProvider, SmtpProvider, WebhookProvider
from lienwatch.config import load_settings
from lienwatch.followup.channels import Dispatcher, Message
from lienwatch.followup.compliance import ComplianceGuard, ContactRequest
from lienwatch.followup.model import Channel, FollowupError

SECRET = "s3cret-shared-with-the-gateway"
ELEVEN_PM_SHANGHAI = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def test_the_built_ins_are_registered_as_entry_points():
    assert {"log", "webhook", "smtp"} <= set(provider_factories())


def test_a_table_builds_one_provider_per_channel():
    providers = build_providers(
        {
            "sms": {"provider": "webhook", "url": "https://gw.example/sms", "secret": SECRET},
            "email": {"provider": "smtp", "host": "mail.example", "sender": "c@lender.example"},
            "letter": {"provider": "log"},
        }
    )
    sms, email = providers[Channel.SMS], providers[Channel.EMAIL]
    assert isinstance(sms, WebhookProvider) and sms.url == "https://gw.example/sms"
    assert isinstance(email, SmtpProvider) and (email.host, email.port) == ("mail.example", 25)
    assert isinstance(providers[Channel.LETTER], LogProvider)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"sms": {"provider": "pigeon"}},
         "followup.providers.sms.provider: unknown provider 'pigeon'"),
        ({"sms": {}}, "followup.providers.sms.provider: unknown provider None"),
        ({"fax": {"provider": "log"}}, "followup.providers.fax: unknown channel 'fax'"),
        ({"call": {"provider": "log"}}, "followup.providers.call: call is not delivered through"),
        ({"sms": {"provider": "webhook", "secret": SECRET}},
         "followup.providers.sms.url: Field required"),
        ({"sms": {"provider": "webhook", "url": "gw.example", "secret": SECRET}},
         "followup.providers.sms.url: String should match pattern"),
        ({"sms": {"provider": "webhook", "url": "http://gw/x", "secret": "short"}},
         "followup.providers.sms.secret: String should have at least 16 characters"),
        ({"email": {"provider": "smtp", "sender": "c@x.example", "prot": 25}},
         "followup.providers.email.prot: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_bad_provider_or_option_is_one_line_naming_the_key(table, message):
    with pytest.raises(FollowupError) as caught:
        build_providers(table)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_third_party_plugin_is_found_through_its_entry_point(tmp_path, monkeypatch):
    (tmp_path / "acme_fax.py").write_text(
        "from lienwatch.adapters.senders import LogProvider\n"
        "def factory(options):\n"
        "    if set(options) - {'prefix'}:\n"
        "        raise ValueError(f'{sorted(options)[0]}: unknown option')\n"
        "    return LogProvider()\n"
    )
    dist = tmp_path / "acme_fax-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-fax\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nacme = acme_fax:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(build_providers({"sms": {"provider": "acme"}})[Channel.SMS], LogProvider)
    with pytest.raises(FollowupError, match=r"^followup\.providers\.sms\.colour: unknown option"):
        build_providers({"sms": {"provider": "acme", "colour": "red"}})


def test_the_settings_table_takes_its_secret_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lienwatch.toml").write_text(
        '[followup.providers.sms]\nprovider = "webhook"\nurl = "https://gw.example/sms"\n'
    )
    monkeypatch.delenv("LIENWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LIENWATCH_FOLLOWUP__PROVIDERS__SMS__SECRET", SECRET)
    table = load_settings().followup.providers
    assert table == {
        "sms": {"provider": "webhook", "url": "https://gw.example/sms", "secret": SECRET}
    }
    assert isinstance(build_providers(table)[Channel.SMS], WebhookProvider)


def test_a_letter_passes_the_guard_at_night_when_a_text_may_not(caplog):
    guard = ComplianceGuard("cn")
    night = {"at": ELEVEN_PM_SHANGHAI, "time_zone": "Asia/Shanghai"}
    sms = guard.check(ContactRequest("L1", Channel.SMS, **night))
    assert not sms.allowed and sms.rule == "quiet_hours"
    letter = guard.check(ContactRequest("L1", Channel.LETTER, **night))
    assert letter.allowed and letter.permit is not None
    dispatcher = Dispatcher(guard, build_providers({"letter": {"provider": "log"}}))
    with caplog.at_level(logging.INFO, logger="lienwatch.followup.outbound"):
        delivery = dispatcher.send(
            letter.permit, Channel.LETTER, Message("上海市浦东新区 1 号", "催收函", "k-letter")
        )
    assert delivery.delivered and "上海市浦东新区 1 号" in caplog.text


def test_a_letter_still_respects_a_dispute_hold():
    decision = ComplianceGuard("cn").check(
        ContactRequest("L1", Channel.LETTER, ELEVEN_PM_SHANGHAI, "Asia/Shanghai",
                       dispute_hold=True)
    )  # fmt: skip
    assert not decision.allowed and decision.rule == "dispute_hold"
