"""lienwatch: post-loan risk platform for auto finance."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lienwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
