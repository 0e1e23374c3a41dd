"""Channel providers as plugins.

A provider plugin is an entry point in the group :data:`ENTRY_POINT_GROUP` whose name is the
provider's name and whose object is a factory: called with the channel's options (a mapping,
without the ``provider`` key) it returns a :class:`~lienwatch.followup.channels.Provider`, or
raises ``ValueError`` (a pydantic ``ValidationError`` included) naming the option at fault.
lienwatch registers its built-ins ``log``, ``webhook`` and ``smtp`` the same way, in its own
``pyproject.toml``.

The ``[followup.providers]`` settings table picks one provider per channel::

    [followup.providers.sms]
    provider = "webhook"
    url = "https://sms-gateway.example/lienwatch"
    # secret: from LIENWATCH_FOLLOWUP__PROVIDERS__SMS__SECRET
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lienwatch.adapters.senders import LogProvider, SmtpProvider, WebhookProvider
from lienwatch.followup.channels import Provider
from lienwatch.followup.model import Channel, FollowupError

ENTRY_POINT_GROUP = "lienwatch.channel_providers"
SETTINGS_KEY = "followup.providers"

ProviderFactory = Callable[[Mapping[str, Any]], Provider]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogOptions(_Options):
    logger: str = "lienwatch.followup.outbound"


class WebhookOptions(_Options):
    url: str = Field(pattern=r"^https?://\S+$")
    secret: str = Field(min_length=16)  # shared with the receiver; set it from the environment
    timeout_s: float = Field(10.0, gt=0)


class SmtpOptions(_Options):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    timeout_s: float = Field(10.0, gt=0)


def log_provider(options: Mapping[str, Any]) -> Provider:
    """The ``log`` provider: every message to a Python logger (option ``logger``)."""
    return LogProvider(logging.getLogger(LogOptions.model_validate(options).logger))


def webhook_provider(options: Mapping[str, Any]) -> Provider:
    """The ``webhook`` provider: options ``url``, ``secret`` (at least 16 characters),
    ``timeout_s``."""
    opts = WebhookOptions.model_validate(options)
    return WebhookProvider(opts.url, opts.secret, timeout_s=opts.timeout_s)


def smtp_provider(options: Mapping[str, Any]) -> Provider:
    """The ``smtp`` provider: options ``host``, ``port``, ``sender``, ``timeout_s``."""
    opts = SmtpOptions.model_validate(options)
    return SmtpProvider(opts.host, opts.port, opts.sender, opts.timeout_s)


def provider_factories() -> dict[str, ProviderFactory]:
    """Every installed provider plugin by name (built-ins included)."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def build_providers(table: Mapping[str, Mapping[str, Any]]) -> dict[Channel, Provider]:
    """One provider per channel from ``{channel: {"provider": name, **options}}``.

    An unknown channel, a channel that is not delivered by a provider, an unknown provider
    or a bad option raises FollowupError naming the key (``followup.providers.sms.url: ...``).
    """
    factories = provider_factories()
    providers: dict[Channel, Provider] = {}
    for channel_name, entry in table.items():
        key = f"{SETTINGS_KEY}.{channel_name}"
        channel = _deliverable_channel(channel_name, key)
        options = dict(entry)
        name = options.pop("provider", None)
        if name not in factories:
            known = ", ".join(sorted(factories))
            raise FollowupError(f"{key}.provider: unknown provider {name!r} (installed: {known})")
        providers[channel] = _build(factories[name], options, key)
    return providers


def _deliverable_channel(name: str, key: str) -> Channel:
    try:
        channel = Channel(name)
    except ValueError:
        raise FollowupError(f"{key}: unknown channel {name!r}") from None
    if not (channel.automatic and channel.contacts_borrower):
        raise FollowupError(f"{key}: {name} is not delivered through a provider")
    return channel


def _build(factory: ProviderFactory, options: dict[str, Any], key: str) -> Provider:
    try:
        return factory(options)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise FollowupError(f"{key}.{where}: {error['msg']}") from None
    except ValueError as exc:
        raise FollowupError(f"{key}.{exc}") from None
