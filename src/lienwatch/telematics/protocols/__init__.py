"""Tracker protocol codecs: one incremental decoder per protocol over a shared base.

>>> decoder = DECODERS["gt06"]()
>>> [event.kind for event in decoder.feed(bytes.fromhex("78780d01012345678901234500018cdd0d0a"))]
['login']
"""

from __future__ import annotations

from lienwatch.telematics.protocols.alarms import (
    CANONICAL_ALARMS,
    DEFAULT_ALARM_MAP,
    AlarmMap,
    ProtocolConfigError,
    alarm_map_from_dict,
)
from lienwatch.telematics.protocols.base import (
    DEFAULT_PROFILE,
    Decoder,
    DecoderStats,
    DeviceProfile,
    ErrorKind,
    Event,
    FrameError,
    Message,
    Position,
    profile_from_dict,
)
from lienwatch.telematics.protocols.gt06 import Gt06Decoder
from lienwatch.telematics.protocols.jt808 import Jt808Decoder

#: Decoder class by protocol name, as used on the command line and in configuration.
DECODERS: dict[str, type[Decoder]] = {"jt808": Jt808Decoder, "gt06": Gt06Decoder}

__all__ = [
    "CANONICAL_ALARMS",
    "DECODERS",
    "DEFAULT_ALARM_MAP",
    "DEFAULT_PROFILE",
    "AlarmMap",
    "Decoder",
    "DecoderStats",
    "DeviceProfile",
    "ErrorKind",
    "Event",
    "FrameError",
    "Gt06Decoder",
    "Jt808Decoder",
    "Message",
    "Position",
    "ProtocolConfigError",
    "alarm_map_from_dict",
    "profile_from_dict",
]
