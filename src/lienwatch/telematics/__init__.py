"""Vehicle telematics: tracker protocol codecs (more to come: gateway, device registry)."""
