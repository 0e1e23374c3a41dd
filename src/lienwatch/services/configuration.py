"""The effective configuration as administrators see it (the API's ``/api/v1/configuration``
and the console's configuration page): every setting the process runs with (the TOML file,
``LIENWATCH_*`` variables and defaults, as :class:`~lienwatch.config.Settings` holds them)
with its secrets redacted: passwords in URLs, tokens, and provider options named like a
secret. The values come from the process's start; changing one means changing the file or
the environment and restarting (every process of a scaled deployment reads its own)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lienwatch.config import Settings

REDACTED = "[redacted]"
#: A key whose value is a secret wherever it appears (``health_token``, a provider's
#: ``secret`` or ``api_key``, a ``password``); ``token_ttl_minutes`` is not one.
SECRET_KEY = re.compile(r"(^|_)(secret|token|password|passwd|api_key|access_key|credentials?)$")
#: Sections whose every value is a secret: partner name -> its ingest token (or digest).
SECRET_MAPS = {"partners"}


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """``settings`` as JSON values, secrets replaced by :data:`REDACTED`."""
    return _redact(settings.model_dump(mode="json"))


def _redact(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key in SECRET_MAPS:
            return {name: REDACTED for name in value}
        return {name: _redact(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, key) for item in value]
    if value is not None and SECRET_KEY.search(key.lower()):
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_url(url: str) -> str:
    """``url`` without the password of its user part (``postgresql://u:[redacted]@h/db``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{REDACTED}@{host}"))


def configuration_rows(settings: Settings) -> list[tuple[str, Any]]:
    """:func:`effective_configuration` as (dotted key, value) rows, in the file's order (a
    table of a page; a list or an empty table is one value)."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(f"{prefix}.{name}" if prefix else name, item)
        else:
            rows.append((prefix, value))

    walk("", effective_configuration(settings))
    return rows
