"""The monitor's reference data in files: risk zones and lender-defined permitted regions.

Both are GeoJSON (:class:`~lienwatch.monitor.zones.ZoneLibrary`,
:class:`~lienwatch.monitor.regions.RegionLibrary`), named by ``[monitor] zones_file`` and
``regions_file``. :class:`ReferenceFiles` is what a long-running monitor reads them through
(``lienwatch serve`` and every ``lienwatch worker``): :meth:`ReferenceFiles.current` reads the
files again when their size or modification time changed, and the libraries change when their
bytes did (their ``version``, a SHA-256 of both). A changed file that does not parse is
refused, logged and kept in ``error``: the monitor goes on with the libraries it has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lienwatch.monitor.model import MonitorInputError
from lienwatch.monitor.regions import RegionLibrary
from lienwatch.monitor.zones import ZoneLibrary
from lienwatch.tabular import InputFileError

log = logging.getLogger(__name__)


def read_geojson(path: Path) -> tuple[bytes, Any]:
    """The bytes of a JSON file and what they hold."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror}") from None
    try:
        return data, json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path} line {exc.lineno}: not JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not JSON ({exc.reason})") from None


def read_zones(path: Path) -> ZoneLibrary:
    """A GeoJSON file of risk zones (see :class:`ZoneLibrary`)."""
    try:
        return ZoneLibrary(read_geojson(path)[1])
    except MonitorInputError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def read_regions(path: Path) -> RegionLibrary:
    """A GeoJSON file of lender-defined permitted regions (see :class:`RegionLibrary`)."""
    try:
        return RegionLibrary(read_geojson(path)[1])
    except MonitorInputError as exc:
        raise InputFileError(f"{path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class References:
    """The libraries a monitor is built with, and the version of the files they came from
    ("" without any file)."""

    version: str = ""
    zones: ZoneLibrary | None = None
    regions: RegionLibrary | None = None


class ReferenceFiles:
    """``[monitor] zones_file`` and ``regions_file``, read again when they change; see the
    module docstring. Safe to call from several threads."""

    def __init__(self, zones_file: Path | None, regions_file: Path | None) -> None:
        self.paths = (zones_file, regions_file)
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._current = References()

    def current(self) -> References:
        """The libraries of the files as they are now (raising InputFileError if a file is
        unreadable at the first call; later, the last good ones are kept)."""
        with self._lock:
            stamp = tuple(_stamp(path) for path in self.paths)
            if stamp == self._stamp:
                return self._current
            try:
                self._current = self._read()
            except InputFileError as exc:
                if self._stamp is None:
                    raise
                self.error = str(exc)
                log.error("monitor references: keeping version %s: %s",
                          self._current.version[:12], exc)  # fmt: skip
            else:
                self.error = None
            self._stamp = stamp
            return self._current

    def _read(self) -> References:
        zones_file, regions_file = self.paths
        digest = hashlib.sha256()
        libraries: list[Any] = []
        for path, build in ((zones_file, ZoneLibrary), (regions_file, RegionLibrary)):
            if path is None:
                digest.update(b"-")
                libraries.append(None)
                continue
            data, document = read_geojson(path)
            digest.update(hashlib.sha256(data).digest())
            try:
                libraries.append(build(document))
            except MonitorInputError as exc:
                raise InputFileError(f"{path}: {exc}") from None
        version = digest.hexdigest() if any(self.paths) else ""
        if version == self._current.version:
            return self._current
        log.info("monitor references: version %s (%s)", version[:12],
                 ", ".join(str(p) for p in self.paths if p))  # fmt: skip
        return References(version, *libraries)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)
