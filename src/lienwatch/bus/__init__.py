"""The position bus: in-process (embedded default) or NATS JetStream (scaled out).

Both implement :class:`lienwatch.telematics.fixes.PositionBus`.
"""

from lienwatch.bus.inprocess import InProcessBus
from lienwatch.bus.jetstream import JetStreamBus, decode_fixes, encode_fixes

__all__ = ["InProcessBus", "JetStreamBus", "decode_fixes", "encode_fixes"]
