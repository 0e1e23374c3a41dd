"""Charts as inline SVG, written by hand: no script, no network, the same text in the HTML
and in the PDF.

Each function returns one ``<svg>`` element (as :class:`markupsafe.Markup`) with a title,
axis labels with units and a legend where there are several series. Buckets have the same
colour in every chart (:func:`bucket_colour`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from html import escape
from typing import Any

import shapely
from markupsafe import Markup
from shapely.geometry import shape

from lienwatch.data import china_provinces

FONT = 'font-family="Noto Sans CJK SC, Noto Sans SC, PingFang SC, Microsoft YaHei, sans-serif"'
INK, GRID, MUTED = "#1d2330", "#d8dde6", "#5b6475"
#: M0 … M7+: green through amber to deep red; the same everywhere.
BUCKET_COLOURS = ("#2e7d32", "#9ccc65", "#fdd835", "#ffb300", "#fb8c00", "#f4511e", "#d32f2f",
                  "#8e0000")  # fmt: skip
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31")  # fmt: skip

Format = Callable[[float], str]


def bucket_colour(index: int) -> str:
    return BUCKET_COLOURS[min(index, len(BUCKET_COLOURS) - 1)]


def _text(x: float, y: float, text: str, *, size: int = 11, anchor: str = "start",
          fill: str = INK, weight: str = "normal", rotate: bool = False) -> str:  # fmt: skip
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}"{turn}>{escape(text)}</text>')  # fmt: skip


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" class="chart" {FONT}>'
            f'<title>{escape(title)}</title>')  # fmt: skip
    return Markup(head + _text(8, 18, title, size=13, weight="bold") + "".join(body) + "</svg>")


def _ticks(high: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``high``."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    step = 10 ** math.floor(math.log10(raw))
    step = next(m * step for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    return [i * step for i in range(math.ceil(high / step - 1e-9) + 1)]


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, y_label: str,
         fmt: Format, colours: Sequence[str], notes: Sequence[str] = ()) -> Markup:  # fmt: skip
    """Vertical bars, one per label, each value written above its bar (below a negative one;
    ``notes`` under the axis); labels too long for their slot are slanted."""
    width, left, top = 640, 70, 40
    slant = max((len(label) for label in labels), default=0) * 11 > (width - 90) / max(
        len(labels), 1)
    bottom = 50 + (max(len(label) for label in labels) * 6 if slant else 0)
    height = 250 + bottom
    plot_w, plot_h = width - left - 20, height - top - bottom
    low = min(0.0, *values) if values else 0.0
    ticks = _ticks(max(values, default=0))
    if low < 0:
        ticks = [-t for t in reversed(_ticks(-low))][:-1] + (ticks if max(values) > 0 else [0.0])
    scale = plot_h / (ticks[-1] - ticks[0])
    zero = top + plot_h + ticks[0] * scale  # the y of value 0
    body = [_text(14, top + plot_h / 2, y_label, anchor="middle", fill=MUTED, rotate=True)]
    for tick in ticks:
        y = zero - tick * scale
        body.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{INK if tick == 0 and low < 0 else GRID}"/>')  # fmt: skip
        body.append(_text(left - 6, y + 4, fmt(tick), size=10, anchor="end", fill=MUTED))
    slot = plot_w / max(len(labels), 1)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x, h = left + i * slot + slot * 0.15, value * scale
        body.append(f'<rect x="{x:.1f}" y="{zero - max(h, 0):.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{abs(h):.1f}" fill="{colours[i]}"/>')  # fmt: skip
        centre = x + slot * 0.35
        body.append(_text(centre, zero - h - 4 if h >= 0 else zero - h + 12, fmt(value),
                          size=10, anchor="middle"))  # fmt: skip
        if slant:
            y = top + plot_h + 12
            body.append(f'<text x="{centre:.1f}" y="{y:.1f}" font-size="11" text-anchor="end" '
                        f'fill="{INK}" transform="rotate(-35 {centre:.1f} {y:.1f})">'
                        f"{escape(label)}</text>")  # fmt: skip
        else:
            body.append(_text(centre, top + plot_h + 16, label, anchor="middle"))
        if notes:
            body.append(_text(centre, top + plot_h + 32, notes[i], size=10, anchor="middle",
                              fill=MUTED))  # fmt: skip
    return _svg(width, height, title, body)


def heatmap(rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[float | None]],
            *, title: str, x_label: str, y_label: str) -> Markup:  # fmt: skip
    """A transition matrix: shares 0–1, each cell labelled in per cent; a cell right of the
    diagonal (to a column after the row's own) in reds, on it in greys, left of it in greens,
    darker for a larger share; rows without a share grey."""
    cell, left, top = 52, 110, 60
    width, height = left + cell * len(columns) + 20, top + cell * len(rows) + 50
    body = [_text(left + cell * len(columns) / 2, top - 26, x_label, anchor="middle",
                  fill=MUTED),
            _text(14, top + cell * len(rows) / 2, y_label, anchor="middle", fill=MUTED,
                  rotate=True)]  # fmt: skip
    for j, name in enumerate(columns):
        body.append(_text(left + j * cell + cell / 2, top - 8, name, anchor="middle"))
    for i, name in enumerate(rows):
        y = top + i * cell
        body.append(_text(left - 8, y + cell / 2 + 4, name, anchor="end"))
        for j, share in enumerate(cells[i]):
            x = left + j * cell
            if share is None:
                fill, label, ink = "#eceff4", "", INK
            else:
                own = columns.index(name) if name in columns else j
                fill = _tone(share, "worse" if j > own else "same" if j == own else "better")
                label, ink = f"{100 * share:.0f}%", "#ffffff" if share > 0.55 else INK
            body.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                        f'fill="{fill}"/>')  # fmt: skip
            if label:
                body.append(_text(x + cell / 2 - 1, y + cell / 2 + 4, label, size=10,
                                  anchor="middle", fill=ink))  # fmt: skip
    return _svg(width, height, title, body)


_TONES = {"worse": (183, 28, 28), "same": (96, 106, 122), "better": (46, 125, 50)}


def _tone(share: float, kind: str) -> str:
    """From white (0) to the kind's full colour (1), on a square-root scale."""
    weight = math.sqrt(max(0.0, min(share, 1.0)))
    r, g, b = (round(255 + (c - 255) * weight) for c in _TONES[kind])
    return f"rgb({r},{g},{b})"


def lines(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, x_label: str,
          y_label: str, y_fmt: Format, x_fmt: Format = lambda x: f"{x:g}",
          colours: Sequence[str] = SERIES) -> Markup:  # fmt: skip
    """One line per series with a legend on the right; x and y axes from 0."""
    width, height, left, top, bottom, legend = 660, 300, 70, 40, 46, 120
    plot_w, plot_h = width - left - legend - 10, height - top - bottom
    points = [p for values in series.values() for p in values]
    if not points:
        return _svg(width, 80, title, [_text(8, 50, "—", fill=MUTED)])
    xs = [x for x, _ in points]
    x_low, x_high = min(xs), max(xs)
    x_span = (x_high - x_low) or 1
    y_ticks = _ticks(max(y for _, y in points))
    body = [_text(left + plot_w / 2, height - 8, x_label, anchor="middle", fill=MUTED),
            _text(14, top + plot_h / 2, y_label, anchor="middle", fill=MUTED, rotate=True)]

    def place(x: float, y: float) -> tuple[float, float]:
        return left + (x - x_low) / x_span * plot_w, top + plot_h - y / y_ticks[-1] * plot_h

    for tick in y_ticks:
        _, y = place(x_low, tick)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{GRID}"/>')  # fmt: skip
        body.append(_text(left - 6, y + 4, y_fmt(tick), size=10, anchor="end", fill=MUTED))
    for tick in _x_ticks(x_low, x_high):
        x, _ = place(tick, 0)
        body.append(_text(x, top + plot_h + 16, x_fmt(tick), size=10, anchor="middle",
                          fill=MUTED))  # fmt: skip
    for n, (name, values) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        coords = " ".join("{:.1f},{:.1f}".format(*place(x, y)) for x, y in values)
        if len(values) > 1:
            body.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                        f'stroke-width="2"/>')  # fmt: skip
        for x, y in values:
            px, py = place(x, y)
            body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 12 + n * 16
        body.append(f'<rect x="{width - legend}" y="{ly - 9}" width="12" height="10" '
                    f'fill="{colour}"/>')  # fmt: skip
        body.append(_text(width - legend + 16, ly, name, size=10))
    return _svg(width, height, title, body)


def _x_ticks(low: float, high: float) -> list[float]:
    """Round ticks over ``[low, high]``; whole numbers only when both ends are whole (days,
    months on book)."""
    if high == low:
        return [low]
    ticks = _ticks(high - low, count=6)
    if float(low).is_integer() and float(high).is_integer():
        step = max(1, math.ceil(ticks[1]))
        ticks = list(range(0, math.floor(high - low) + 1, step))
    return [low + t for t in ticks if low + t <= high + 1e-9]


@cache
def _province_paths() -> dict[str, str]:
    """Each province's outline as an SVG path in a 560 × 460 frame (equirectangular at 35°N,
    simplified as one coverage so that neighbours still meet)."""
    features = china_provinces()["features"]
    geometries = shapely.coverage_simplify([shape(f["geometry"]) for f in features], 0.08)
    west, south, east, north = 73.0, 17.5, 135.5, 54.0
    k = math.cos(math.radians(35))
    scale = min(540 / ((east - west) * k), 420 / (north - south))

    def ring(coords) -> str:
        pts = [f"{(lon - west) * k * scale + 10:.1f},{(north - lat) * scale + 30:.1f}"
               for lon, lat in coords]  # fmt: skip
        return "M" + "L".join(pts) + "Z"

    paths = {}
    for feature, geometry in zip(features, geometries, strict=True):
        polygons = getattr(geometry, "geoms", [geometry])
        paths[feature["properties"]["gb2260"]] = "".join(
            ring(p.exterior.coords) for p in polygons if not p.is_empty
        )
    return paths


def choropleth(values: Mapping[str, float], names: Mapping[str, str], *, title: str,
               unit: str, fmt: Format, note: str) -> Markup:  # fmt: skip
    """Provinces shaded by ``values`` (keyed by GB/T 2260 code), five classes from light to
    dark blue with a legend; provinces without a value are grey."""
    shades = ("#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
    high = max(values.values(), default=0)
    body = []
    for code, path in _province_paths().items():
        value = values.get(code)
        if value:
            fill = shades[min(int(value / high * len(shades)), len(shades) - 1)]
            label = f"{names.get(code, code)}: {fmt(value)} {unit}"
        else:
            fill, label = "#eceff4", names.get(code, code)
        body.append(f'<path d="{path}" fill="{fill}" stroke="#ffffff" stroke-width="0.6">'
                    f"<title>{escape(label)}</title></path>")  # fmt: skip
    for i, shade in enumerate(shades):
        y = 300 + i * 18
        low, up = high * i / len(shades), high * (i + 1) / len(shades)
        body.append(f'<rect x="585" y="{y}" width="14" height="12" fill="{shade}"/>')
        body.append(_text(604, y + 10, f"{fmt(low)}–{fmt(up)}", size=10))
    body.append(_text(585, 290, unit, size=10, fill=MUTED))
    body.append(_text(8, 478, note, size=9, fill=MUTED))
    return _svg(720, 486, title, body)


def track(points: Sequence[Sequence[float]], *, label: str) -> Markup:
    """A small plot of a track (lon, lat pairs), north up, start hollow and end filled."""
    width = height = 140
    if not points:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 30" '
                      f'width="{width}" height="30" {FONT}>{_text(4, 18, label, fill=MUTED)}'
                      "</svg>")  # fmt: skip
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    k = math.cos(math.radians(sum(lats) / len(lats)))
    span = max((max(lons) - min(lons)) * k, max(lats) - min(lats), 0.002)
    scale = (width - 20) / span

    def place(lon: float, lat: float) -> tuple[float, float]:
        return 10 + (lon - min(lons)) * k * scale, height - 10 - (lat - min(lats)) * scale

    coords = " ".join("{:.1f},{:.1f}".format(*place(lon, lat)) for lon, lat in points)
    start, end = place(*points[0]), place(*points[-1])
    km = span * 111.3
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" {FONT}><title>{escape(label)}</title>'
        f'<rect width="{width}" height="{height}" fill="#f7f9fc" stroke="{GRID}"/>'
        f'<polyline points="{coords}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>'
        f'<circle cx="{start[0]:.1f}" cy="{start[1]:.1f}" r="3" fill="#ffffff" stroke="{INK}"/>'
        f'<circle cx="{end[0]:.1f}" cy="{end[1]:.1f}" r="3" fill="#d32f2f"/>'
        + _text(4, 12, f"{km:.1f} km", size=9, fill=MUTED)
        + "</svg>"
    )


@cache
def _province_shapes() -> tuple[tuple[str, str, str, Any], ...]:
    """(code, English name, Chinese name, geometry simplified to about 1 km) per province."""
    features = china_provinces()["features"]
    geometries = shapely.coverage_simplify([shape(f["geometry"]) for f in features], 0.01)
    return tuple((f["properties"]["gb2260"], f["properties"]["name_en"],
                  f["properties"]["name_zh"], g)
                 for f, g in zip(features, geometries, strict=True))  # fmt: skip


def province_track(points: Sequence[Sequence[float]], stays: Sequence[Mapping[str, Any]], *,
                   title: str, chinese: bool = False, empty: str = "—") -> Markup:  # fmt: skip
    """A vehicle's track (lon, lat pairs, oldest first) over the outlines of the provinces it
    crosses, north up: the route in blue, the start hollow, the last fix red, and each stay
    (``lon``, ``lat``, ``label``) as an amber ring with its label as a tooltip. The frame
    covers the track with a margin of at least 0.3°, so a car parked for days still shows
    the streets' scale of its province's edge."""
    width, height = 640, 420
    if not points:
        return _svg(width, 60, title, [_text(8, 44, empty, fill=MUTED)])
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    margin = max(0.3, (max(lons) - min(lons)) * 0.15, (max(lats) - min(lats)) * 0.15)
    west, east = min(lons) - margin, max(lons) + margin
    south, north = min(lats) - margin, max(lats) + margin
    k = math.cos(math.radians((south + north) / 2))
    scale = min((width - 20) / ((east - west) * k), (height - 40) / (north - south))
    x0 = 10 + ((width - 20) - (east - west) * k * scale) / 2

    def place(lon: float, lat: float) -> tuple[float, float]:
        return x0 + (lon - west) * k * scale, 30 + (north - lat) * scale

    frame = shapely.box(west, south, east, north)
    body = [f'<rect x="0" y="24" width="{width}" height="{height - 24}" fill="#f7f9fc"/>']
    for _code, name_en, name_zh, geometry in _province_shapes():
        if not geometry.intersects(frame):
            continue
        clipped = geometry.intersection(frame)
        path = "".join(
            "M" + "L".join("{:.1f},{:.1f}".format(*place(x, y)) for x, y in p.exterior.coords)
            + "Z"
            for p in getattr(clipped, "geoms", [clipped])
            if isinstance(p, shapely.Polygon) and not p.is_empty
        )
        label = name_zh if chinese else name_en
        body.append(f'<path d="{path}" fill="#eceff4" stroke="{MUTED}" stroke-width="0.8">'
                    f"<title>{escape(label)}</title></path>")  # fmt: skip
    coords = " ".join("{:.1f},{:.1f}".format(*place(lon, lat)) for lon, lat in points)
    body.append(f'<polyline points="{coords}" fill="none" stroke="#1f77b4" '
                'stroke-width="1.5" class="track"/>')  # fmt: skip
    for stay in stays:
        x, y = place(stay["lon"], stay["lat"])
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="#fb8c00" '
                    f'stroke-width="2.5" class="stay"><title>{escape(stay["label"])}</title>'
                    "</circle>")  # fmt: skip
    (sx, sy), (ex, ey) = place(*points[0]), place(*points[-1])
    body.append(f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="4" fill="#ffffff" stroke="{INK}"/>')
    body.append(f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="4.5" fill="#d32f2f"/>')
    return _svg(width, height, title, body)
