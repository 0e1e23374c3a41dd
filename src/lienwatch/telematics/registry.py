"""The device registry: which trackers may connect, their JT/T 808 auth codes and their status.

A device is known to the store (``devices`` row, bound to a vehicle and through it to a loan;
a vehicle carries at most one wired and one wireless device). The registry decides what a
connecting device may do:

- a known device is admitted; one connecting over another protocol than it is registered
  with is refused, and so is one tied to another HTTP ingest partner than the one posting;
- an unknown device is refused (``reject``) or recorded unbound and ``quarantined``
  (``quarantine``): its positions are kept but no vehicle is watched through it until an
  operator binds it;
- a JT/T 808 registration (0x0100) issues a fresh random auth code, of which only a SHA-256
  digest is stored; authentication (0x0102) must present the code. A terminal registers once:
  registering again is refused with result 3 (terminal registered), so that nobody can take
  over a registered terminal by registering as it, unless an operator reset its registration
  (``lienwatch device reset-auth IDENT``) or the registration comes from the connection the
  terminal authenticated on.

Status: ``online`` while a session is open or the last fix is recent, ``offline`` once it is
older than two report intervals, ``unknown`` for a device never heard from.

The registry talks to storage through :class:`DeviceDirectory`, implemented by
``lienwatch.store``. Its methods block on the database: asyncio code calls them in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Literal, Protocol

log = logging.getLogger(__name__)

UnknownPolicy = Literal["reject", "quarantine"]


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


#: The collateral alert a second live session of one device raises (stored with the monitor's
#: alerts, without a monitor key, and followed up like them).
DEVICE_CLONED = "device_cloned"


class RegisterResult(IntEnum):
    """Result codes of the JT/T 808 register response (0x8100)."""

    OK = 0
    VEHICLE_REGISTERED = 1
    VEHICLE_UNKNOWN = 2
    TERMINAL_REGISTERED = 3
    TERMINAL_UNKNOWN = 4


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the gateway needs to know about a registered device.

    Attributes:
        id: surrogate key (``devices.id``), the ``device_id`` of its fixes.
        ident: IMEI or terminal phone number.
        protocol: ``jt808``, ``gt06`` or ``osmand``.
        kind: ``wired`` or ``wireless``.
        vehicle_id: the vehicle it is fitted to, None when unbound.
        loan_id: the vehicle's most recent loan, None when there is none.
        auth_code: the digest of the JT/T 808 auth code last issued (the code itself only in
            the record :meth:`DeviceRegistry.register` returns), None before the first
            registration or after a reset.
        quarantined: connected without being known; not trusted until bound.
        report_interval_s: nominal interval between fixes while parked.
        model: the device model, which selects its decoding profile (``[gateway.models]``).
        partner: the HTTP ingest partner that alone may post for it (None: any partner).
        fitted_on: the day it was fitted to its vehicle; fixes dated before it are refused
            (None: unknown, not checked).
    """

    id: int
    ident: str
    protocol: str
    kind: str
    vehicle_id: int | None
    loan_id: int | None
    auth_code: str | None
    quarantined: bool
    report_interval_s: int
    model: str = ""
    partner: str | None = None
    fitted_on: date | None = None


class DeviceDirectory(Protocol):
    """Device storage as the registry needs it; each call is its own committed change."""

    def find(self, ident: str) -> DeviceRecord | None:
        """The device with this IMEI / terminal phone, or None."""
        ...

    def add_quarantined(
        self, ident: str, protocol: str, partner: str | None = None
    ) -> DeviceRecord:
        """Record an unknown device, unbound and quarantined, tied to ``partner`` if given
        (idempotent per ident)."""
        ...

    def count_quarantined(self) -> int:
        """How many devices are quarantined."""
        ...

    def set_auth_codes(self, digests: Mapping[int, str | None]) -> None:
        """Store the digest of each device's auth code (None: forget it), in one change."""
        ...

    def set_statuses(self, statuses: Mapping[int, DeviceStatus]) -> None:
        """Each device's status (by device id), in one change."""
        ...

    def refresh_statuses(self, *, now: datetime, connected: Collection[int]) -> Counter[str]:
        """Every device's status from its session (``connected``) and last fix; counts."""
        ...

    def record_clone(self, device_id: int, *, at: datetime, addresses: Collection[str]) -> bool:
        """Raise (or repeat, while it is open) a ``device_cloned`` collateral alert on the
        device's vehicle, naming the peer ``addresses`` of the two sessions; False when the
        device is fitted to no vehicle (nothing to alert on)."""
        ...


class DeviceRegistry:
    """Admission, registration, authentication and session status of devices.

    Args:
        directory: the device storage.
        unknown_devices: ``reject`` or ``quarantine`` devices the directory does not know.
        max_quarantined: quarantined devices beyond which unknown devices are refused.
    """

    def __init__(
        self,
        directory: DeviceDirectory,
        *,
        unknown_devices: UnknownPolicy,
        max_quarantined: int = 1000,
    ) -> None:
        if unknown_devices not in ("reject", "quarantine"):
            raise ValueError(f"unknown_devices: {unknown_devices!r} is not reject or quarantine")
        self.directory = directory
        self.unknown_devices = unknown_devices
        self.max_quarantined = max_quarantined

    def admit(
        self, ident: str, protocol: str, *, partner: str | None = None
    ) -> DeviceRecord | None:
        """The device allowed to connect as ``ident`` over ``protocol`` (posted by HTTP
        ingest ``partner``), or None if refused."""
        record = self.directory.find(ident)
        if record is None:
            if self.unknown_devices == "reject":
                log.warning("refused unknown %s device %s", protocol, ident)
                return None
            if self.directory.count_quarantined() >= self.max_quarantined:
                # Anyone may claim to be an unknown device: their rows must not grow unbounded.
                log.warning("refused unknown %s device %s: %d devices already quarantined",
                            protocol, ident, self.max_quarantined)  # fmt: skip
                return None
            log.warning("quarantined unknown %s device %s", protocol, ident)
            return self.directory.add_quarantined(ident, protocol, partner)
        if record.protocol != protocol:
            log.warning(
                "refused device %s: registered for %s, connected over %s",
                ident,
                record.protocol,
                protocol,
            )
            return None
        if partner is not None and record.partner not in (None, partner):
            log.warning("refused device %s: tied to partner %s, posted by %s",
                        ident, record.partner, partner)  # fmt: skip
            return None
        return record

    def register(
        self, ident: str, *, session_of: int | None = None
    ) -> tuple[RegisterResult, DeviceRecord | None]:
        """A JT/T 808 registration: :meth:`registration`, its new code saved at once."""
        result, record = self.registration(ident, session_of=session_of)
        if record is not None and record.auth_code is not None:
            self.save_auth_codes({record.id: record.auth_code})
        return result, record

    def registration(
        self, ident: str, *, session_of: int | None = None
    ) -> tuple[RegisterResult, DeviceRecord | None]:
        """The answer to a JT/T 808 registration: admit the terminal and draw it a new code,
        which counts once :meth:`save_auth_codes` stored it (the gateway saves the
        registrations of a moment together, then answers them).

        ``session_of`` is the device the registering connection is authenticated as, if any:
        that device may register again; any other registered terminal may not.
        Returns the result to send in 0x8100 and, on success, the record carrying the code
        in clear (the only time it exists in clear).
        """
        record = self.admit(ident, "jt808")
        if record is None:
            return RegisterResult.TERMINAL_UNKNOWN, None
        if record.auth_code is not None and session_of != record.id:
            log.warning("registration refused: %s is registered (reset-auth to re-register)", ident)
            return RegisterResult.TERMINAL_REGISTERED, None
        return RegisterResult.OK, _with_code(record, secrets.token_hex(8))

    def save_auth_codes(self, codes: Mapping[int, str]) -> None:
        """Store the codes :meth:`registration` drew (in clear here: their digests are
        stored), by device id, in one change."""
        self.directory.set_auth_codes({device: auth_digest(code) for device, code in codes.items()})

    def authenticate(self, ident: str, code: str) -> DeviceRecord | None:
        """The JT/T 808 device if ``code`` is the auth code issued to it, else None."""
        record = self.directory.find(ident)
        if record is None or record.protocol != "jt808" or not record.auth_code:
            log.warning("authentication refused: %s has no issued code", ident)
            return None
        if not hmac.compare_digest(record.auth_code, auth_digest(code)):
            log.warning("authentication refused: wrong code from %s", ident)
            return None
        return record

    def reset_auth(self, ident: str) -> DeviceRecord | None:
        """Forget the auth code of JT/T 808 terminal ``ident`` so that it may register again
        (a replaced or factory-reset terminal); None if there is no such terminal."""
        record = self.directory.find(ident)
        if record is None or record.protocol != "jt808":
            return None
        self.directory.set_auth_codes({record.id: None})
        return record

    def device_cloned(
        self, record: DeviceRecord, *, at: datetime, addresses: Collection[str]
    ) -> None:
        """A second live session for ``record`` was refused: a cloned or spoofed tracker.
        It becomes a ``device_cloned`` alert on the device's vehicle (one while open)."""
        if not self.directory.record_clone(record.id, at=at, addresses=addresses):
            log.warning("device_cloned: %s is fitted to no vehicle: no alert", record.ident)

    def sessions_changed(self, statuses: Mapping[int, DeviceStatus]) -> None:
        """Sessions opened (``online``) and closed (``offline``) since the last call, the
        latest of each device's, written together (the gateway gathers them: a status
        written at every connection cost each login a commit of its own)."""
        self.directory.set_statuses(statuses)


def auth_digest(code: str) -> str:
    """What is stored of an auth code: its SHA-256 digest in hex, so a copy of the database
    does not hand out the codes (the codes are random: no salt is needed)."""
    return hashlib.sha256(code.encode()).hexdigest()


def _with_code(record: DeviceRecord, code: str) -> DeviceRecord:
    fields = {name: getattr(record, name) for name in DeviceRecord.__slots__}
    return DeviceRecord(**{**fields, "auth_code": code})


def device_status(
    *,
    connected: bool,
    last_fix_at: datetime | None,
    report_interval_s: int,
    now: datetime,
) -> DeviceStatus:
    """A device's status from its session and last fix.

    Online while connected or while the last fix is younger than two report intervals (HTTP
    devices have no session); offline once it is older; unknown if it never sent a fix and
    is not connected.
    """
    if connected:
        return DeviceStatus.ONLINE
    if last_fix_at is None:
        return DeviceStatus.UNKNOWN
    if now - last_fix_at <= timedelta(seconds=2 * report_interval_s):
        return DeviceStatus.ONLINE
    return DeviceStatus.OFFLINE
