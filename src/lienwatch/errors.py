"""The one exception type the CLI and API turn into a one-line message."""


class LienwatchError(Exception):
    """An error a user can fix: bad input, bad configuration, an unreachable database.

    The message names what is wrong (the field, the key, the file and line) in one line.
    """
