"""Lender-defined permitted regions: the library, `left_region` on them, replay --regions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lienwatch.cli import app
from lienwatch.commands.replay import InputFileError, read_devices
from lienwatch.domain.geo import offset_m
from lienwatch.monitor import (
    AlertType,
    DeviceSpec,
    Monitor,
    MonitorInputError,
    RegionLibrary,
    VehicleSpec,
)
from tests.monitor.conftest import HOME, HOUR, T0, batch

# A 5 km circle round HOME (Hangzhou) and a square round Shanghai, both named "yard".
SHANGHAI_SQUARE = [[[121.3, 31.1], [121.6, 31.1], [121.6, 31.3], [121.3, 31.3], [121.3, 31.1]]]
REGIONS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "yard", "radius_m": 5000},
            "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]},
        },
        {
            "type": "Feature",
            "properties": {"name": "yard"},
            "geometry": {"type": "Polygon", "coordinates": SHANGHAI_SQUARE},
        },
        {
            "type": "Feature",
            "properties": {"name": "depot", "radius_m": 300.5},
            "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
        },
    ],
}


def test_a_region_is_the_union_of_its_circles_and_polygons():
    library = RegionLibrary(REGIONS)
    assert library.names == ("depot", "yard")
    near = offset_m(HOME[0], HOME[1], 4_900, 0)
    far = offset_m(HOME[0], HOME[1], 5_100, 0)
    lat = [near[0], far[0], 31.2, 31.2, 39.9]
    lon = [near[1], far[1], 121.45, 121.7, 116.4]
    assert library.contains("yard", lat, lon).tolist() == [True, False, True, False, False]
    assert library.contains("depot", lat, lon).tolist() == [False, False, False, False, True]


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"properties": {"radius_m": 5}}, "feature 0: name is missing or empty"),
        ({"properties": {"name": "x"}}, "feature 0: radius_m None is not a positive number"),
        ({"properties": {"name": "x", "radius_m": -1}}, "radius_m -1 is not a positive number"),
        (
            {
                "properties": {"name": "x"},
                "geometry": {"type": "LineString", "coordinates": [[120, 30], [121, 31]]},
            },
            "feature 0: geometry is a LineString, not a polygon or point",
        ),
        (
            {
                "properties": {"name": "x"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[120, 30], [121, 31], [121, 30], [120, 31], [120, 30]]],
                },
            },
            "feature 0: invalid polygon (Self-intersection",
        ),
    ],
)
def test_bad_regions_name_the_feature(feature, message):
    point = {"type": "Point", "coordinates": [120.0, 30.0]}
    document = {"type": "FeatureCollection", "features": [{"geometry": point} | feature]}
    with pytest.raises(MonitorInputError, match=message.replace("(", r"\(")):
        RegionLibrary(document)


def _drive(provinces, vehicle: VehicleSpec):
    # at home 2 h, 20 km east (still Zhejiang, outside the circle) for 3 h, then home again
    away = offset_m(HOME[0], HOME[1], 20_000, 0)
    rows = [("D", T0 + k * 1800, *HOME) for k in range(4)]
    rows += [("D", T0 + 2 * HOUR + k * 1800, *away) for k in range(7)]
    rows += [("D", T0 + 6 * HOUR, *HOME)]
    monitor = Monitor(
        [DeviceSpec("D", vehicle.vehicle_id)],
        [vehicle],
        provinces=provinces,
        regions=RegionLibrary(REGIONS),
    )
    monitor.replay(batch(rows))
    monitor.flush()
    return [a for a in monitor.alerts if a.type is AlertType.LEFT_REGION]


def test_left_region_fires_outside_the_lender_area_and_resolves_on_return(provinces):
    [alert] = _drive(provinces, VehicleSpec("V", area="yard"))
    assert (alert.start, alert.end) == (T0 + 2 * HOUR, T0 + 6 * HOUR)
    assert alert.evidence["permitted"] == "yard"
    assert alert.status_by == "monitor"


def test_the_same_trip_stays_inside_the_province(provinces):
    assert _drive(provinces, VehicleSpec("V", region="33")) == []


def test_a_vehicle_naming_an_unknown_area_is_refused(provinces):
    with pytest.raises(MonitorInputError, match="area: vehicle V's region 'harbour'"):
        _drive(provinces, VehicleSpec("V", area="harbour"))


def test_replay_resolves_region_names_from_the_regions_file_or_settings(tmp_path):
    regions = tmp_path / "regions.geojson"
    regions.write_text(json.dumps(REGIONS))
    away = offset_m(HOME[0], HOME[1], 20_000, 0)
    lines = ["device_id,time,lat,lon"]
    for k in range(8):
        lat, lon = HOME if k < 2 else away
        lines.append(f"D,2026-07-01T{k:02d}:00:00Z,{float(lat)},{float(lon)}")
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "d.csv").write_text("device_id,vehicle_id,kind,region\nD,V,wired,yard\n")
    (tmp_path / "m.toml").write_text('[monitor]\nregions_file = "regions.geojson"\n')
    runner = CliRunner()
    files = [str(tmp_path / "p.csv"), "--devices", str(tmp_path / "d.csv")]
    for options in (["--regions", str(regions)], ["--config", str(tmp_path / "m.toml")]):
        result = runner.invoke(app, ["replay", *files, *options, "--json"])
        assert result.exit_code == 0, result.output
        [alert] = [json.loads(x) for x in result.stdout.splitlines() if '"left_region"' in x]
        assert alert["evidence"]["permitted"] == "yard"


def test_a_region_name_without_a_regions_file_is_refused(tmp_path, provinces):
    (tmp_path / "d.csv").write_text("device_id,vehicle_id,kind,region\nD,V,wired,yard\n")
    with pytest.raises(InputFileError, match="line 2, column region: unknown province or region"):
        read_devices(tmp_path / "d.csv", provinces)
    assert read_devices(tmp_path / "d.csv", provinces, RegionLibrary(REGIONS))[1][0].area == "yard"
