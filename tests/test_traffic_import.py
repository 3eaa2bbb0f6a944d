"""`python -m simulator trace import`: logs in the shapes production writes them parsed to the right
times, cut to a window, scaled, written with their provenance; every mistake one line, exit 2."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from loadlab.trace import read_provenance, read_trace
from simulator.cli import main
from simulator.traffic.load import load
from simulator.traffic.profile import profile
from tests.traffic_logs import MONDAY, epoch_ms_csv, iso_csv, jsonl, realistic_times, relative_csv


@pytest.fixture(scope="module")
def seconds():
    return realistic_times(days=3, per_day=300, bursts_per_day=2, burst_size=10, seed=3)


def trace_times(path):
    return np.asarray([t for t, _ in read_trace(path)])


def test_iso_with_zone_unsorted_with_junk_rows(tmp_path, seconds, capsys):
    log = iso_csv(tmp_path / "log.csv", seconds, zone_hours=2, cases=["512", "1024", "2048"])
    out = tmp_path / "t.csv"
    assert main(["trace", "import", str(log), "--out", str(out), "--case-column", "resolution",
                 "--case-map", "512=small,1024=medium,2048=large"]) == 0
    printed = capsys.readouterr().out
    assert "2 unreadable row(s) skipped: line 4: timestamp 'not-a-time'" in printed and "line 6: 1 fields" in printed
    np.testing.assert_allclose(trace_times(out), seconds - seconds[0], atol=1e-6)   # sorted, to the second
    rows = read_trace(out)
    assert {c for _, c in rows} == {"small", "medium", "large"}
    # the profile's hours are the log's own clock (+02:00): traffic busy 8-18 UTC shows at 10-20
    data = load(log, case_column="resolution", case_map="*=medium")
    rates = profile(data.epoch, data.wall, data.cases, data.window.span_s, data.start_wall)["rate_per_hour_by_hour_of_day"]
    assert min(rates[10:20]) > 3 * max(rates[2:10])
    prov = read_provenance(out)
    assert prov["source"] == str(log) and prov["time_unit"] == "iso" and prov["rows_unreadable"] == 2
    assert prov["window_start"] == (MONDAY + timedelta(seconds=float(seconds[0]))).isoformat()


def test_epoch_ms_relative_and_json_lines_parse_to_the_same_times(tmp_path, seconds):
    expected = seconds - seconds[0]
    for name, log, extra in [
        ("ms", epoch_ms_csv(tmp_path / "ms.csv", seconds), []),
        ("rel", relative_csv(tmp_path / "rel.csv", seconds), ["--time-column", "elapsed"]),
        ("jsonl", jsonl(tmp_path / "log.jsonl", seconds, ["3", "4"]), ["--case-column", "layers",
                                                                       "--case-map", "3=small,4=medium"]),
    ]:
        out = tmp_path / f"{name}.csv"
        assert main(["trace", "import", str(log), "--out", str(out), *extra]) == 0, name
        np.testing.assert_allclose(trace_times(out), expected, atol=1e-3, err_msg=name)
        assert read_provenance(out)["time_unit"] == {"ms": "epoch-ms", "rel": "relative-s", "jsonl": "iso"}[name]
    # JSON Lines: the two junk lines (not JSON; no time) named, newest-first rows sorted
    data = load(tmp_path / "log.jsonl", case_column="layers")
    assert [why.split(" (")[0] for _, why in data.bad] == ["no 'time' value", "not JSON"]


def test_windows_and_scaling(tmp_path, seconds):
    log = epoch_ms_csv(tmp_path / "ms.csv", seconds)
    base = MONDAY.timestamp()
    frm, to = base + 86400 + 9 * 3600, base + 86400 + 12 * 3600        # Tuesday 09:00-12:00 UTC
    out = tmp_path / "w.csv"
    assert main(["trace", "import", str(log), "--out", str(out), "--from", str(int(frm * 1000)),
                 "--to", str(int(to * 1000)), "--time-scale", "10"]) == 0
    inside = seconds[(seconds >= frm - base) & (seconds < to - base)]
    np.testing.assert_allclose(trace_times(out), (inside - (frm - base)) / 10, atol=1e-4)
    # --busiest 1h: the hour holding the most arrivals
    assert main(["trace", "import", str(log), "--out", str(out), "--busiest", "1h"]) == 0
    ends = np.searchsorted(seconds, seconds + 3600, "left")
    assert len(read_trace(out)) == int((ends - np.arange(seconds.size)).max())
    # --rate R: the mean rate of the written trace is R; --utilisation 0.5 --service-s 10: 0.05/s
    for flags, rate in [(["--rate", "2"], 2.0), (["--utilisation", "0.5", "--service-s", "10"], 0.05)]:
        assert main(["trace", "import", str(log), "--out", str(out), *flags]) == 0
        t = trace_times(out)
        span = read_provenance(out)["span_s"] / read_provenance(out)["time_scale"]
        assert len(t) / span == pytest.approx(rate, rel=1e-6)
        assert t[-1] <= span


@pytest.mark.parametrize("text,flags,message", [
    ("a,b\n1,2\n", [], "which column holds the time"),
    ("time,b\n1,2\n", ["--time-column", "when"], "no time column 'when'"),
    ("time,case\nx,small\ny,small\n", [], "no readable rows (2 unreadable: line 2: time 'x'"),
    ("time,case\n10,small\n", ["--from", "100"], "no arrivals in the window"),
    ("time,case\n10,small\n", ["--from", "soon"], "--from 'soon' is not a time"),
    ("time,case\n10,small\n", ["--case-column", "kind"], "no case column 'kind'"),
    ("time,case\n10,small\n", ["--case-map", "a=b"], "--case-map maps the values of --case-column"),
    ("time,case\n10,small\n", ["--busiest", "an hour"], "--busiest 'an hour'"),
    ("time,case\n10,small\n", ["--rate", "2", "--time-scale", "3"], "choose one of"),
    ("time,case\n10,small\n", ["--rate", "2"], "a mean rate needs arrivals over a span"),
    ("time,case\n10,small\n", ["--utilisation", "0.5"], "go together"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, text, flags, message):
    log = tmp_path / "log.csv"
    log.write_text(text)
    out = tmp_path / "out.csv"
    assert main(["trace", "import", str(log), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_unreadable_files(tmp_path, capsys):
    binary = tmp_path / "log.csv"
    binary.write_bytes(b"time,case\n\xff\xfe1,small\n")
    for path, message in [(binary, "is not UTF-8"), (tmp_path / "missing.csv", "does not exist")]:
        assert main(["trace", "import", str(path), "--out", str(tmp_path / "o.csv")]) == 2
        assert message in capsys.readouterr().err


def test_a_trace_with_provenance_still_reads_and_replays_everywhere(tmp_path, seconds):
    log = epoch_ms_csv(tmp_path / "ms.csv", seconds)
    out = tmp_path / "t.csv"
    assert main(["trace", "import", str(log), "--out", str(out)]) == 0
    first = out.read_text().splitlines()[0]
    assert first.startswith("# provenance: ") and json.loads(first[14:])["format"] == "csv"
    assert len(read_trace(out)) == seconds.size
    # the trace itself imports again (t_s,case: relative seconds), the same times
    again = tmp_path / "again.csv"
    assert main(["trace", "import", str(out), "--out", str(again)]) == 0
    np.testing.assert_allclose(trace_times(again), trace_times(out), atol=1e-6)


def test_locusts_trace_replay_reads_an_imported_trace(tmp_path, seconds):
    from types import SimpleNamespace

    from locustfiles.report import open_plan_from_options

    log = relative_csv(tmp_path / "rel.csv", seconds[:50])
    out = tmp_path / "t.csv"
    assert main(["trace", "import", str(log), "--time-column", "elapsed", "--case", "light", "--out", str(out)]) == 0
    plan = open_plan_from_options(SimpleNamespace(arrival="trace", trace=str(out), stage_seconds=60.0, time_scale=1.0))
    arrivals = plan.arrivals()
    assert len(arrivals) == 50 and {a.case for a in arrivals} == {"light"}
    np.testing.assert_allclose([a.t_s for a in arrivals], seconds[:50] - seconds[0], atol=1e-3)


def test_a_log_over_the_row_bound_is_refused(tmp_path):
    from simulator.traffic.read import read_log

    log = tmp_path / "log.csv"
    log.write_text("time\n" + "".join(f"{i}\n" for i in range(5)))
    with pytest.raises(ValueError, match="more than 4 rows"):
        read_log(log, max_rows=4)
    assert len(read_log(log, max_rows=5).times) == 5


def test_parquet_logs_with_timestamp_or_text_times(tmp_path, seconds, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = MONDAY.timestamp()
    stamps = pa.array([int((base + s) * 1000) for s in seconds.tolist()] + [None], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    cases = pa.array(["512"] * seconds.size + ["512"])
    pq.write_table(pa.table({"created_at": stamps, "size": cases}), tmp_path / "typed.parquet")
    text = [(MONDAY + timedelta(seconds=float(s))).isoformat() for s in seconds.tolist()][::-1] + ["soon"]
    pq.write_table(pa.table({"timestamp": text}), tmp_path / "text.parquet")
    for name, extra in [("typed", ["--case-column", "size", "--case-map", "512=small"]), ("text", [])]:
        out = tmp_path / f"{name}.csv"
        assert main(["trace", "import", str(tmp_path / f"{name}.parquet"), "--out", str(out), *extra]) == 0
        np.testing.assert_allclose(trace_times(out), seconds - seconds[0], atol=1e-6, err_msg=name)
        assert read_provenance(out)["format"] == "parquet"
        assert f"line {seconds.size + 1}:" in capsys.readouterr().out        # the null / unparsable row, by row number
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert main(["trace", "import", str(broken), "--out", str(tmp_path / "b.csv")]) == 2
    assert "not a readable parquet file" in capsys.readouterr().err
