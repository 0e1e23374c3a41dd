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
from collections.abc import Mapping
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
    data = _read_bytes(path)
    return data, _json(str(path), data)


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
        documents = {kind: None if path is None else (str(path), _read_bytes(path))
                     for kind, path in zip(KINDS, self.paths, strict=True)}  # fmt: skip
        version = _version(documents)
        if self._current.version and version == self._current.version:
            return self._current
        found = references_of(documents, version=version)
        if any(self.paths):
            log.info("monitor references: version %s (%s)", found.version[:12],
                     ", ".join(str(p) for p in self.paths if p))  # fmt: skip
        else:
            log.info("monitor references: none ([monitor] zones_file and regions_file unset: "
                     "no risk zones, no lender-defined areas)")  # fmt: skip
        return found


#: The kinds of reference document, in the order of their digests in a version.
KINDS = ("zones", "regions")


def references_of(
    documents: Mapping[str, tuple[str, bytes] | None], *, version: str | None = None
) -> References:
    """The libraries of the GeoJSON documents given by kind (``zones``, ``regions``) as
    (name, bytes), None for a kind without one; the version is the SHA-256 over both ("" when
    there is neither), the same whether they came from files or were published
    (``lienwatch worker references publish``); ``version`` when the caller hashed them
    already. InputFileError names what does not parse."""
    libraries: list[Any] = []
    for kind, build in zip(KINDS, (ZoneLibrary, RegionLibrary), strict=True):
        document = documents.get(kind)
        if document is None:
            libraries.append(None)
            continue
        name, data = document
        try:
            libraries.append(build(_json(name, data)))
        except MonitorInputError as exc:
            raise InputFileError(f"{name}: {exc}") from None
    return References(_version(documents) if version is None else version, *libraries)


def _version(documents: Mapping[str, tuple[str, bytes] | None]) -> str:
    digest = hashlib.sha256()
    for kind in KINDS:
        document = documents.get(kind)
        digest.update(b"-" if document is None else hashlib.sha256(document[1]).digest())
    return digest.hexdigest() if any(documents.get(kind) for kind in KINDS) else ""


class PublishedReferences:
    """The references a monitor judges by when they are distributed through the bus: the last
    document published (:meth:`offer`) once there is one, else ``fallback``'s (the files of
    this machine). A published document that does not parse is refused, logged and kept in
    ``error``; the last good one stays. Safe to call from several threads."""

    def __init__(self, fallback: ReferenceFiles) -> None:
        self.fallback = fallback
        self.published: int | None = None  # the publication taken (its sequence)
        self.error: str | None = None
        self._lock = threading.Lock()
        self._current: References | None = None

    def current(self) -> References:
        with self._lock:
            current = self._current
        return self.fallback.current() if current is None else current

    def offer(self, sequence: int, data: bytes) -> None:
        """Take publication ``sequence`` (JSON ``{"zones": text | null, "regions": …}``)."""
        try:
            texts = _json(f"published references {sequence}", data)
            found = references_of({kind: None if texts.get(kind) is None else (
                f"published {kind} {sequence}", texts[kind].encode()) for kind in KINDS})
        except (InputFileError, AttributeError, TypeError) as exc:
            self.error = str(exc)
            log.error("monitor references: publication %d refused: %s", sequence, exc)
        else:
            with self._lock:
                self._current, self.error = found, None
            log.info("monitor references: publication %d, version %s", sequence,
                     found.version[:12])  # fmt: skip
        self.published = sequence


def publication(documents: Mapping[str, Path | None]) -> tuple[bytes, References]:
    """The files given by kind as one document to publish (see :meth:`offer`) and what they
    hold; InputFileError names a file that is unreadable or does not parse."""
    read = {kind: None if path is None else (str(path), _read_bytes(path))
            for kind, path in documents.items()}  # fmt: skip
    found = references_of(read)
    texts = {kind: None if read.get(kind) is None else read[kind][1].decode() for kind in KINDS}
    return json.dumps(texts).encode(), found


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror}") from None


def _json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{name} line {exc.lineno}: not JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: not JSON ({exc.reason})") from None


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)
