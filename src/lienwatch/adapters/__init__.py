"""I/O at the edges: the implementations of the capabilities' interfaces that talk to the
world (message providers over SMTP and HTTP)."""
