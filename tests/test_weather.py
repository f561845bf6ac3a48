"""Weather readers (TMY3, EPW), synthetic profiles and the lookup at simulation times."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.dashboard.levers import WEATHER_SOURCES
from twin.errors import TraceFormatError, UnknownNameError
from twin.physics import psychrometrics as psy
from twin.scenario.facility_schema import Weather
from twin.weather import (
    BUILTIN_WEATHER,
    DATA_DIR,
    WEATHER_COLUMNS,
    builtin_weather,
    builtin_weather_names,
    read_epw,
    read_tmy3,
    read_weather_file,
    synthetic_weather,
    weather_at,
)

DATA = Path(__file__).parent / "data"
GREENSBORO = DATA_DIR / "723170TYA_Greensboro_NC.csv"
SHARED = Path("/work/shared/traces/weather-tmy3")


@pytest.fixture(scope="module")
def greensboro() -> pd.DataFrame:
    return builtin_weather("greensboro-nc")[0]


@pytest.fixture(scope="module")
def sand_point() -> pd.DataFrame:
    return builtin_weather("sand-point-ak")[0]


def _month(frame: pd.DataFrame, month: int) -> pd.DataFrame:
    start = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365][month - 1 : month + 1]
    return frame[(frame.time_s >= start[0] * 86400) & (frame.time_s < start[1] * 86400)]


def test_packaged_files_are_the_shared_files_unchanged() -> None:
    for name in ("723170TYA_Greensboro_NC.csv", "703165TY_Sand_Point_AK.csv"):
        packaged = (DATA_DIR / name).read_bytes()
        assert len(packaged) > 1_000_000
        if (SHARED / name).exists():
            assert packaged == (SHARED / name).read_bytes()
    assert "NREL/TP-581-43156" in (DATA_DIR / "SOURCE.md").read_text()


def test_greensboro_shape_columns_and_time_convention(greensboro: pd.DataFrame) -> None:
    assert len(greensboro) == 8760
    assert tuple(greensboro.columns) == WEATHER_COLUMNS
    assert all(greensboro[c].dtype == np.float64 for c in WEATHER_COLUMNS)
    # hour ending 01/01 01:00 -> hour starting 0 s; 12/31 24:00 -> 8759 h
    np.testing.assert_array_equal(greensboro.time_s, np.arange(8760) * 3600.0)
    # first row of the file: 10.0 C, dew point 6.1 C, RH 77 %, 993 mbar, 6.2 m/s
    first = greensboro.iloc[0]
    assert (first.dry_bulb_c, first.dew_point_c, first.rh) == (10.0, 6.1, 0.77)
    assert (first.pressure_pa, first.wind_m_s) == (99_300.0, 6.2)


def test_greensboro_meta() -> None:
    _, meta = read_tmy3(GREENSBORO)
    assert meta.format == "tmy3"
    assert meta.duration_s == 8759 * 3600.0
    assert meta.extra["usaf"] == "723170"
    assert meta.extra["elevation_m"] == 273.0
    assert meta.extra["utc_offset_h"] == -5.0
    assert meta.extra["missing_filled"] == dict.fromkeys(
        ("dry_bulb_c", "dew_point_c", "rh", "pressure_pa", "wind_m_s"), 0
    )


def test_july_warmer_than_january(greensboro: pd.DataFrame) -> None:
    july, january = _month(greensboro, 7), _month(greensboro, 1)
    assert len(july) == len(january) == 31 * 24
    assert july.dry_bulb_c.mean() > january.dry_bulb_c.mean() + 15.0


def test_sand_point_has_more_cool_wet_bulb_hours(greensboro: pd.DataFrame, sand_point: pd.DataFrame) -> None:
    assert (sand_point.wet_bulb_c < 10.0).sum() > (greensboro.wet_bulb_c < 10.0).sum()


@pytest.mark.parametrize("site", builtin_weather_names())
def test_wet_bulb_between_dew_point_and_dry_bulb(site: str) -> None:
    frame = builtin_weather(site)[0]
    assert np.all(frame.wet_bulb_c <= frame.dry_bulb_c + 1e-9)
    assert np.all(frame.wet_bulb_c >= frame.dew_point_c - 1e-9)
    assert np.all((frame.rh >= 0.0) & (frame.rh <= 1.0))


def test_unknown_builtin_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="greensboro-nc"):
        builtin_weather("phoenix")


# === the three EPW climates (twin/data/weather/SOURCE.md) ======================================

#: Published figures per site, [C]. ``normals``: NOAA NCEI 1991-2020 U.S. Climate Normals for the
#: airport station, as the NWS offices quote them, rounded (mean daily maximum of July, mean daily
#: minimum of January, annual mean): Phoenix Sky Harbor ~106.5 F / ~46 F / ~76 F (NWS Phoenix: "our
#: average high this time of year is 106"); Miami Intl ~91 F / ~61.5 F / ~77 F; San Francisco Intl
#: ~71.5 F / ~44 F / ~58.5 F. A typical year drawn from 1973-2005 runs cooler than the warmer
#: 1991-2020 normals, and the figures are rounded: hence the 2 K tolerance. ``design``: ASHRAE
#: Handbook--Fundamentals 2009 ch. 14 climatic design conditions, as each file's DESIGN CONDITIONS
#: record carries them: the 0.4 % annual cooling dry-bulb and the 0.4 % evaporation wet-bulb
#: (exceeded 35 h a year).
CLIMATES: dict[str, dict[str, tuple[float, ...]]] = {
    "phoenix-az": {"normals": (41.4, 7.8, 24.4), "design": (43.4, 24.5)},
    "miami-fl": {"normals": (32.9, 16.4, 25.1), "design": (33.2, 26.8)},
    "san-francisco-ca": {"normals": (22.0, 6.6, 14.7), "design": (28.3, 18.6)},
}
EPW_SHA256 = {
    "phoenix-az": "aa7edb5eb1adb620c703932f8b9457a092ba232a31ec47e185803b132aff2906",
    "miami-fl": "e649b1c55f7cf9c849748adcd32bfb5f4fd7c36dac16943b5a6772e3cf0376c8",
    "san-francisco-ca": "ecb08acd6c73dbc620fff290365b10c06d64f2f2ab0549a99838cefd01740148",
}
_MONTH_START_DAY = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])


def _daily(frame: pd.DataFrame, how: str, month: int) -> float:
    """Mean over one month's days of the daily maximum or minimum dry-bulb."""
    day = (frame.time_s // 86400).astype(int)
    per_day = getattr(frame.groupby(day).dry_bulb_c, how)()
    in_month = np.searchsorted(_MONTH_START_DAY, per_day.index, side="right") == month
    return float(per_day[in_month].mean())


@pytest.fixture(scope="module")
def climates() -> dict[str, pd.DataFrame]:
    return {site: builtin_weather(site)[0] for site in CLIMATES}


def test_epw_climates_are_the_published_files_unchanged() -> None:
    source = (DATA_DIR / "SOURCE.md").read_text()
    for site, digest in EPW_SHA256.items():
        data = gzip.decompress((DATA_DIR / BUILTIN_WEATHER[site]).read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest
        assert digest in source and BUILTIN_WEATHER[site] in source
        assert data.startswith(b"LOCATION,") and b"NREL TMY Data Set (2008)" in data


@pytest.mark.parametrize("site", list(CLIMATES))
def test_epw_climate_is_a_whole_hourly_year(site: str, climates: dict[str, pd.DataFrame]) -> None:
    frame = climates[site]
    assert len(frame) == 8760
    np.testing.assert_array_equal(frame.time_s, np.arange(8760) * 3600.0)
    _, meta = builtin_weather(site)
    assert meta.format == "epw" and meta.extra["data_source"] == "TMY3"
    assert sum(meta.extra["missing_filled"].values()) == 0


@pytest.mark.parametrize("site", list(CLIMATES))
def test_epw_climate_matches_published_normals_and_design_data(site: str, climates: dict[str, pd.DataFrame]) -> None:
    frame = climates[site]
    july_high, january_low, annual_mean = CLIMATES[site]["normals"]
    assert _daily(frame, "max", 7) == pytest.approx(july_high, abs=2.0)
    assert _daily(frame, "min", 1) == pytest.approx(january_low, abs=2.0)
    assert frame.dry_bulb_c.mean() == pytest.approx(annual_mean, abs=2.0)
    dry_04, wet_04 = CLIMATES[site]["design"]
    # the 35 warmest hours of a typical year sit near the long-record 0.4 % design values
    assert np.percentile(frame.dry_bulb_c, 99.6) == pytest.approx(dry_04, abs=1.5)
    assert np.percentile(frame.wet_bulb_c, 99.6) == pytest.approx(wet_04, abs=1.5)


def test_hot_dry_is_dry_hot_humid_is_humid_mild_is_mild(climates: dict[str, pd.DataFrame]) -> None:
    phoenix, miami, sf = climates["phoenix-az"], climates["miami-fl"], climates["san-francisco-ca"]
    july = slice(181 * 24, 212 * 24)
    # hot-dry: low humidity and a wide wet-bulb depression (what makes evaporative cooling cheap)
    assert phoenix.rh.mean() < 0.40
    assert (phoenix.dry_bulb_c - phoenix.wet_bulb_c).iloc[july].mean() > 10.0
    # hot-humid: high wet-bulb most of the year, little depression
    assert (miami.wet_bulb_c > 24.0).sum() > 1500
    assert (miami.wet_bulb_c > 24.0).sum() > 20 * (phoenix.wet_bulb_c > 24.0).sum()
    assert (miami.dry_bulb_c - miami.wet_bulb_c).iloc[july].mean() < 5.0
    # mild: no hour above 24 C wet-bulb, and every month's mean within 10..20 C
    assert (sf.wet_bulb_c > 24.0).sum() == 0
    months = np.searchsorted(_MONTH_START_DAY, (sf.time_s // 86400).astype(int), side="right")
    monthly = sf.dry_bulb_c.groupby(months).mean()
    assert monthly.min() > 9.0 and monthly.max() < 20.0


def test_gzip_file_reads_as_its_plain_text(tmp_path: Path) -> None:
    plain_epw = tmp_path / "plain.epw"
    plain_epw.write_bytes((DATA / "synthetic.epw").read_bytes())
    packed = tmp_path / "packed.epw.gz"
    packed.write_bytes(gzip.compress(plain_epw.read_bytes()))
    pd.testing.assert_frame_equal(read_weather_file(packed)[0], read_epw(plain_epw)[0])
    tmy3 = tmp_path / "greensboro.csv.gz"
    tmy3.write_bytes(gzip.compress(GREENSBORO.read_bytes()))
    assert read_weather_file(tmy3)[1].format == "tmy3"
    broken = tmp_path / "broken.epw.gz"
    broken.write_bytes(packed.read_bytes()[:200])
    with pytest.raises(TraceFormatError, match=r"broken\.epw\.gz.*gzip"):
        read_weather_file(broken)


def test_climates_are_offered_by_slug() -> None:
    for site in CLIMATES:
        assert site in WEATHER_SOURCES
        assert site in Weather.model_fields["source"].description
        assert Weather(source=site).source == site


def _rewrite_line(src: Path, dst: Path, line: int, column: int, value: str) -> None:
    lines = src.read_text(encoding="latin-1").splitlines(keepends=True)
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    dst.write_text("".join(lines), encoding="latin-1")


# In the TMY3 header, Dry-bulb (C) is column 31 (0-based) and Pressure (mbar) column 40.
TMY3_DRY_BULB, TMY3_PRESSURE = 31, 40


def test_tmy3_corrupted_row_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    _rewrite_line(GREENSBORO, bad, 100, TMY3_DRY_BULB, "abc")
    with pytest.raises(TraceFormatError, match=r"bad\.csv, line 100, field 'Dry-bulb \(C\)'") as err:
        read_tmy3(bad)
    assert err.value.line == 100
    assert err.value.field == "Dry-bulb (C)"


def test_tmy3_implausible_value_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    _rewrite_line(GREENSBORO, bad, 5000, TMY3_PRESSURE, "5")  # 5 mbar
    with pytest.raises(TraceFormatError, match="line 5000, field 'pressure_pa'"):
        read_tmy3(bad)


def test_tmy3_missing_value_is_interpolated_and_counted(tmp_path: Path) -> None:
    holed = tmp_path / "holed.csv"
    _rewrite_line(GREENSBORO, holed, 50, TMY3_DRY_BULB, "-9900")
    frame, meta = read_tmy3(holed)
    original = read_tmy3(GREENSBORO)[0]
    i = 50 - 3  # line 50 is the 48th data row
    expected = 0.5 * (original.dry_bulb_c[i - 1] + original.dry_bulb_c[i + 1])
    assert frame.dry_bulb_c[i] == pytest.approx(expected)
    assert meta.extra["missing_filled"]["dry_bulb_c"] == 1


def test_tmy3_missing_column_and_bad_date(tmp_path: Path) -> None:
    text = GREENSBORO.read_text(encoding="latin-1")
    no_col = tmp_path / "nocol.csv"
    no_col.write_text(text.replace("Wspd (m/s)", "Wind"), encoding="latin-1")
    with pytest.raises(TraceFormatError, match="line 2, field 'Wspd"):
        read_tmy3(no_col)
    bad_date = tmp_path / "date.csv"
    _rewrite_line(GREENSBORO, bad_date, 7, 0, "13/01/1988")
    with pytest.raises(TraceFormatError, match="line 7, field 'month'"):
        read_tmy3(bad_date)
    missing = tmp_path / "missing.csv"
    with pytest.raises(TraceFormatError, match=r"missing\.csv"):
        read_tmy3(missing)


def test_epw_synthetic_file() -> None:
    frame, meta = read_epw(DATA / "synthetic.epw")
    assert len(frame) == 48
    assert tuple(frame.columns) == WEATHER_COLUMNS
    np.testing.assert_array_equal(frame.time_s, np.arange(48) * 3600.0)
    assert meta.format == "epw"
    assert meta.extra["city"] == "Testville"
    assert meta.extra["elevation_m"] == 1600.0
    np.testing.assert_array_equal(frame.pressure_pa, 84_000.0)
    np.testing.assert_allclose(frame.wind_m_s, 2.0 + 0.1 * np.arange(48))
    # row 11 (hour ending 11:00) holds 99.9: filled halfway between 6.3 and 8.5 C
    assert meta.extra["missing_filled"]["dry_bulb_c"] == 1
    assert frame.dry_bulb_c[10] == pytest.approx(7.4)
    # cosine between 0 and 10 C peaking at hour ending 15:00 (hour starting 14)
    assert frame.dry_bulb_c.idxmax() == 14
    assert np.all(frame.wet_bulb_c <= frame.dry_bulb_c + 1e-9)
    # the wet-bulb uses the station pressure: at 84 kPa (1600 m), 10 C / 0 C dew point gives a
    # lower wet-bulb than at sea level (the psychrometric constant scales with pressure)
    assert frame.wet_bulb_c[14] == pytest.approx(float(psy.wet_bulb_c(10.0, 0.0, 84_000.0)))
    assert frame.wet_bulb_c[14] < float(psy.wet_bulb_c(10.0, 0.0, 101_325.0)) - 0.1


def test_epw_errors_name_line_and_field(tmp_path: Path) -> None:
    src = DATA / "synthetic.epw"
    bad = tmp_path / "bad.epw"
    _rewrite_line(src, bad, 20, 6, "warm")
    with pytest.raises(TraceFormatError, match=r"bad\.epw, line 20, field 'Dry Bulb Temperature'"):
        read_epw(bad)
    lines = src.read_text().splitlines(keepends=True)
    header = tmp_path / "header.epw"
    header.write_text("".join([*lines[:3], "GROUND TEMPS,0\n", *lines[4:]]))
    with pytest.raises(TraceFormatError, match="line 4, field 'GROUND TEMPERATURES'"):
        read_epw(header)
    sub_hourly = tmp_path / "sub.epw"
    sub_hourly.write_text("".join([*lines[:7], "DATA PERIODS,1,4,Data,Sunday, 1/ 1, 1/ 2\n", *lines[8:]]))
    with pytest.raises(TraceFormatError, match="records per hour"):
        read_epw(sub_hourly)
    short = tmp_path / "short.epw"
    short.write_text("".join([*lines[:30], "2001,1,2,10,60\n", *lines[31:]]))
    with pytest.raises(TraceFormatError, match="line 31"):
        read_epw(short)
    shuffled = tmp_path / "order.epw"
    shuffled.write_text("".join([*lines[:9], lines[10], lines[9], *lines[11:]]))
    with pytest.raises(TraceFormatError, match="line 11, field 'time'"):
        read_epw(shuffled)


def test_synthetic_constant() -> None:
    frame, meta = synthetic_weather("constant", hours=48, dry_bulb_c=30.0, wet_bulb_c=22.0)
    assert len(frame) == 48
    assert meta.format == "synthetic"
    np.testing.assert_allclose(frame.wet_bulb_c, 22.0, atol=1e-6)
    np.testing.assert_allclose(frame.dry_bulb_c, 30.0)
    # 30 C / 22 C wet-bulb at sea level is about 50 % RH (chart value, see test_psychrometrics)
    np.testing.assert_allclose(frame.rh, 0.5, atol=0.005)
    with pytest.raises(ValueError, match="above"):
        synthetic_weather("constant", dry_bulb_c=20.0, wet_bulb_c=21.0)
    with pytest.raises(UnknownNameError, match="diurnal"):
        synthetic_weather("sinusoid")


def test_synthetic_diurnal() -> None:
    frame, _ = synthetic_weather(
        "diurnal", hours=72, dry_bulb_c=25.0, amplitude_k=8.0, peak_hour=15.0, dew_point_c=12.0
    )
    day = frame.dry_bulb_c.to_numpy().reshape(3, 24)
    np.testing.assert_allclose(day.mean(axis=1), 25.0)
    np.testing.assert_array_equal(day.argmax(axis=1), 15)
    np.testing.assert_array_equal(day.argmin(axis=1), 3)
    np.testing.assert_allclose(day.max(axis=1), 33.0)
    np.testing.assert_allclose(frame.dew_point_c, 12.0)
    assert np.all(frame.wet_bulb_c.diff()[1:].to_numpy() != 0.0)


def test_weather_at_hour_of_year_and_wrap(greensboro: pd.DataFrame) -> None:
    start = datetime(2030, 7, 1, 0, 0)
    t_s = np.array([0.0, 1800.0, 3599.0, 3600.0, 365 * 86400.0])
    got = weather_at(greensboro, start, t_s)
    row = (31 + 28 + 31 + 30 + 31 + 30) * 24  # 1 July 00:00 is hour 4344 of the year
    expected = greensboro.dry_bulb_c.to_numpy()[[row, row, row, row + 1, row]]
    np.testing.assert_array_equal(got["dry_bulb_c"], expected)
    assert set(got) == set(WEATHER_COLUMNS) - {"time_s"}
    # the last hour of the year wraps to the first
    end = weather_at(greensboro, datetime(2030, 12, 31, 23, 30), np.array([0.0, 1800.0]))
    np.testing.assert_array_equal(end["wet_bulb_c"], greensboro.wet_bulb_c.to_numpy()[[8759, 0]])
    # a leap-year start reads the same calendar hours after February
    leap = weather_at(greensboro, datetime(2024, 3, 1, 6), 0.0)
    plain = weather_at(greensboro, datetime(2023, 3, 1, 6), 0.0)
    assert leap["dry_bulb_c"] == plain["dry_bulb_c"]


def test_weather_at_scalar_equals_vector(greensboro: pd.DataFrame) -> None:
    start = datetime(2025, 1, 15, 8, 30)
    t_s = np.linspace(0.0, 40 * 86400.0, 97)
    vector = weather_at(greensboro, start, t_s)
    for i in (0, 13, 50, 96):
        assert weather_at(greensboro, start, t_s[i])["dew_point_c"] == vector["dew_point_c"][i]


def test_weather_at_repeats_a_synthetic_day_by_clock_hour() -> None:
    day, _ = synthetic_weather("diurnal", hours=24, dry_bulb_c=20.0, amplitude_k=5.0, peak_hour=15.0)
    got = weather_at(day, datetime(2025, 8, 3, 15, 10), np.array([0.0, 86400.0, 12 * 3600.0]))
    np.testing.assert_allclose(got["dry_bulb_c"], [25.0, 25.0, 15.0])


def test_reader_copes_with_crlf(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.epw"
    shutil.copy(DATA / "synthetic.epw", crlf)
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    assert len(read_epw(crlf)[0]) == 48
