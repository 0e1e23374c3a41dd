"""The codes the console shows (roles, channels, outcomes, statuses, rules, alert types),
marked for the catalogs: a page prints a code through the ``code`` filter, which translates
it (English too has a catalog, for these) and shows one it does not know as the code itself.
``tests/web/test_catalogs.py`` checks that every value of the enums behind them is here."""

from __future__ import annotations


def N_(message: str) -> str:  # gettext's name: a message marked, not translated
    return message


CODES = (
    # roles
    N_("agent"), N_("supervisor"), N_("analyst"), N_("auditor"), N_("admin"),
    # channels and steps
    N_("sms"), N_("voice"), N_("call"), N_("email"), N_("letter"), N_("visit"),
    N_("gps_check"), N_("review"), N_("legal"), N_("tracker_command"), N_("status"), N_("note"),
    N_("repossession"),
    # outcomes and what actions record
    N_("delivered"), N_("rpc"), N_("promise_to_pay"), N_("no_answer"), N_("wrong_number"),
    N_("refused"), N_("dispute"), N_("unreachable"), N_("hardship"), N_("checked"),
    N_("sent"), N_("reassigned"), N_("assigned"), N_("unstaffed"), N_("payment"),
    N_("requested"), N_("declined"),
    # case, task, promise and alert statuses
    N_("new"), N_("in_progress"), N_("escalated"), N_("closed"), N_("queued"), N_("done"),
    N_("cancelled"), N_("open"), N_("kept"), N_("broken"), N_("acknowledged"), N_("resolved"),
    N_("false_positive"),
    # loan statuses
    N_("active"), N_("delinquent"), N_("charged-off"), N_("repossessed"), N_("settled"),
    N_("written-off"), N_("release-pending"),
    # trigger kinds
    N_("pre_due"), N_("missed_installment"), N_("bucket_change"), N_("collateral_alert"),
    N_("broken_promise"), N_("ltv_breach"), N_("payment_anomaly"), N_("welcome_call"),
    N_("tracker_review"), N_("inspection"), N_("past_due"), N_("alert"), N_("promise"),
    # timeline kinds
    N_("trigger"), N_("trigger_resolved"), N_("action"), N_("refusal"), N_("contact_refused"),
    # the compliance guard's rules
    N_("ok"), N_("quiet_hours"), N_("do_not_contact"), N_("dispute_hold"),
    N_("third_party_only_to_restore_contact"), N_("connected_calls_per_day"),
    N_("call_after_conversation"), N_("call_attempts_in_7_days"),
    N_("tracker_command_not_past_due"), N_("tracker_command_needs_supervisor"),
    # tracker commands
    N_("fuel_cut"), N_("immobilise"),
    # alert types and severities
    N_("power_cut"), N_("device_removed"), N_("gnss_antenna_cut"), N_("device_offline"),
    N_("long_stay"), N_("risk_zone_visit"), N_("left_region"), N_("night_relocation"),
    N_("address_mismatch"), N_("unusual_area"), N_("position_jump"), N_("tracker_mismatch"),
    N_("cluster"), N_("device_cloned"), N_("info"), N_("warning"), N_("critical"),
    # payment channels
    N_("bank_debit"), N_("bank_transfer"), N_("cash"), N_("sale_proceeds"),
    # repossession routes
    N_("court_order"), N_("security_enforcement"), N_("negotiated_handover"), N_("self_help"),
    # champion / challenger arms
    N_("champion"), N_("challenger"),
)  # fmt: skip
