"""The hand-written SVG charts: well-formed, titled, labelled, the same colour per bucket."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lienwatch.reports import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_bars_carry_title_axis_values_and_bucket_colours():
    root = parse(charts.bars(["M0", "M1"], [1_500_000, 0], title="Balance <by> bucket",
                             y_label="10,000 yuan", fmt=lambda v: f"{v / 1e6:g}",
                             colours=[charts.bucket_colour(0), charts.bucket_colour(1)],
                             notes=["187", "6"]))  # fmt: skip
    assert root.find(f"{SVG}title").text == "Balance <by> bucket"  # escaped, not markup
    assert {"Balance <by> bucket", "10,000 yuan", "M0", "M1", "1.5", "187"} <= set(texts(root))
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert fills == [charts.BUCKET_COLOURS[0], charts.BUCKET_COLOURS[1]]
    assert charts.bucket_colour(99) == charts.BUCKET_COLOURS[-1]


def test_negative_bars_hang_below_the_zero_line():
    """A league's penalties: the axis reaches below zero, a negative bar grows down from it."""
    root = parse(charts.bars(["ann", "bob"], [30, -20], title="Points", y_label="points",
                             fmt=lambda v: f"{v:+g}", colours=["green", "red"]))  # fmt: skip
    labels = texts(root)
    assert {"+30", "-20", "ann", "bob"} <= set(labels)
    assert "-20" in labels and "+0" in labels  # ticks on both sides of zero
    up, down = [(float(r.get("y")), float(r.get("height"))) for r in root.iter(f"{SVG}rect")]
    assert up[0] + up[1] == down[0]  # both start at the zero line
    assert up[1] / down[1] == 30 / 20


def test_heatmap_tones_worse_same_better():
    root = parse(charts.heatmap(["M0", "M1"], ["M0", "M1"], [[0.9, 0.1], [0.5, None]],
                                title="t", x_label="to", y_label="from"))  # fmt: skip
    cells = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert cells[0] == charts._tone(0.9, "same") and cells[1] == charts._tone(0.1, "worse")
    assert cells[2] == charts._tone(0.5, "better") and cells[3] == "#eceff4"
    assert charts._tone(0, "worse") == "rgb(255,255,255)"
    assert charts._tone(1, "worse") == "rgb(183,28,28)"
    assert {"90%", "10%", "50%"} <= set(texts(root))


def test_lines_have_a_legend_and_whole_ticks_for_whole_numbers():
    root = parse(charts.lines({"2026-01": [(0, 0.0), (1, 0.1)], "2026-02": [(0, 0.05)]},
                              title="t", x_label="months on book", y_label="share",
                              y_fmt=lambda v: f"{v:.0%}"))  # fmt: skip
    assert {"2026-01", "2026-02", "months on book", "share", "0", "1"} <= set(texts(root))
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # a single point draws no line
    assert charts._x_ticks(0, 13) == [0, 3, 6, 9, 12]
    assert charts._ticks(0.37) == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4]
    empty = parse(charts.lines({}, title="none", x_label="x", y_label="y", y_fmt=str))
    assert "—" in texts(empty)


def test_choropleth_draws_every_province_with_a_legend():
    root = parse(charts.choropleth({"11": 100.0, "44": 50.0}, {"11": "北京市", "44": "广东省"},
                                   title="t", unit="万元", fmt=lambda v: f"{v:g}",
                                   note="Natural Earth"))  # fmt: skip
    paths = list(root.iter(f"{SVG}path"))
    assert len(paths) == 34
    tips = {p.find(f"{SVG}title").text for p in paths}
    assert {"北京市: 100 万元", "广东省: 50 万元"} <= tips
    assert "Natural Earth" in texts(root)


def test_track_plot():
    root = parse(charts.track([[121.4, 31.2], [121.5, 31.25]], label="track"))
    assert root.find(f"{SVG}polyline") is not None and len(list(root.iter(f"{SVG}circle"))) == 2
    assert parse(charts.track([], label="no fix")).find(f"{SVG}text").text == "no fix"
