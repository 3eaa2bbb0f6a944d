"""Issue 17, item 7, and the checks behind item 1: every option of locustfiles/decompose.py has one
check (locustfiles/options.py) used at start and by the web UI's form. At start a bad value is one
line `locust: error: ...` and exit code 2, before any request, no traceback (Locust in subprocesses,
see conftest.py); the checks themselves, the web UI's origin rule and make_client's target check are
tested here without Locust."""

import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

import locustfiles.options as options_module
from clients.factory import check_factory, make_client
from locustfiles.options import OPTIONS, REPORTS, OptionError, check_form, check_options
from locustfiles.webui import allowed_authorities, refusal
from server.process import free_port
from tests.locust_helpers import FAKE, LOCUSTFILE

ENV = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.1"}


def defaults(**changes) -> Namespace:
    """The options as the command line gives them by default (plus Locust's that the checks read)."""
    values = {o.dest: o.default for o in OPTIONS} | {"host": "http://fake", "class_picker": False}
    return Namespace(**(values | changes))


def locust_start(args, tmp_path, timeout=60):
    return subprocess.run([sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


# --- at start: one line, exit code 2 -------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--arrival", "poisson", "--rates", "1", "--stage-seconds", "1", "--max-in-flight", "-1"], "--max-in-flight"),
    (["--stages", "0"], "--stages"),
    (["--stages", "1,100000"], "--stages"),
    (["--arrival", "poisson"], "--rates"),
    (["--arrival", "constant", "--rates", "1e9"], "--rates"),
    (["--arrival", "constant", "--rates", "1000", "--stage-seconds", "86400"], "arrivals"),
    (["--stage-seconds", "nan"], "--stage-seconds"),
    (["--jobs-per-user", "-1"], "--jobs-per-user"),
    (["--arrival", "gamma", "--rates", "1", "--burstiness", "0"], "--burstiness"),
    (["--seed", "-1"], "--seed"),
    (["--cases", "nope"], "--cases"),
    (["--arrival", "trace", "--trace", "missing.csv"], "missing.csv"),
    (["--client-factory", "os popen"], "--client-factory"),
    (["--host", "r"], "--host"),
    (["--target", "touch PWNED"], "--target"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_bad_option_is_one_line_and_exit_code_2_before_any_request(tmp_path, args, says):
    host = [] if "--host" in args else ["--host", "http://fake"]
    proc = locust_start(["--headless", *host, *FAKE, *args], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if "Starting Locust" not in line]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "error:" in lines[0] and says in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Uncaught exception" not in proc.stderr
    assert "Shape test starting" not in proc.stderr   # stopped before the run


def test_a_cap_below_the_expected_workers_is_refused_at_start(tmp_path):
    proc = locust_start(["--headless", "--master", "--master-bind-port", str(free_port()), "--expect-workers", "3",
                         "--host", "http://fake", *FAKE, "--arrival", "constant", "--rates", "1", "--max-in-flight", "2"],
                        tmp_path)
    assert proc.returncode == 2 and "--max-in-flight 2 is below the 3" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_web_login_without_a_password_is_one_line_at_start(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "LOADLAB_WEB_PASSWORD"}
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-login", "--web-port", "0",
                           "--host", "http://fake", *FAKE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "LOADLAB_WEB_PASSWORD" in proc.stderr and "Traceback" not in proc.stderr


def test_check_options_sets_the_checked_values():
    options = defaults(seed="7", stage_seconds="2.5", max_in_flight=3)
    check_options(options)
    assert (options.seed, options.stage_seconds, options.max_in_flight) == (7, 2.5, 3)
    with pytest.raises(OptionError, match="--max-in-flight"):
        check_options(defaults(arrival="poisson", rates="1", max_in_flight=2), processes=3)   # below the workers


# --- the web form: what it shows, each value checked ----------------------------------------------

def test_the_form_takes_only_its_fields_and_keeps_the_options_it_was_given():
    options = defaults()
    merged = check_form({"arrival": ["constant"], "rates": ["2"], "target": ["vertex"], "user_count": ["3"]},
                        options, from_cli=vars(defaults()))
    assert (merged.arrival, merged.rates, merged.target, merged.num_users) == ("constant", "2", "vertex", 3)
    assert options.arrival == "closed"   # a copy: nothing changed until Locust's handler runs
    for field in ("client_factory", "web_allowed_hosts", "html_file", "csv_prefix", "locustfile", "web_login"):
        with pytest.raises(OptionError, match=field):
            check_form({field: ["x"]}, options, vars(options))
    with pytest.raises(OptionError, match="2 times"):
        check_form({"target": ["local", "vertex"]}, options, vars(options))
    with pytest.raises(OptionError, match="--rates"):   # the run the fields make is checked as well
        check_form({"arrival": ["poisson"]}, options, vars(options))


@pytest.mark.parametrize("value, ok", [
    ("", True),                                                   # the default path
    (str(REPORTS / "measured" / "x.json"), True),
    (str(REPORTS / "measured" / ".." / "x.json"), True),          # still under reports/
    (str(REPORTS / ".." / "x.json"), False),
    ("../anywhere.json", False),
    ("/tmp/anywhere.json", False),
    (str(REPORTS / "x.txt"), False),
    ("/etc/cron.d/x.json", False),
])
def test_a_report_path_from_the_form_is_a_json_file_under_reports(value, ok):
    form = {"report_out": [value]}
    if ok:
        assert check_form(form, defaults(), {}).report_out == value
    else:
        with pytest.raises(OptionError, match="--report-out"):
            check_form(form, defaults(), {})


def test_a_path_sent_back_unchanged_from_the_command_line_stays_allowed(tmp_path):
    cli = defaults(report_out=str(tmp_path / "report.json"))
    assert check_form({"report_out": [cli.report_out]}, cli, vars(cli)).report_out == cli.report_out
    with pytest.raises(OptionError):
        check_form({"report_out": [str(tmp_path / "other.json")]}, cli, vars(cli))


def test_a_symlink_out_of_reports_is_refused(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setattr(options_module, "REPORTS", reports)
    (reports / "out").symlink_to(tmp_path)
    assert check_form({"report_out": [str(reports / "x.json")]}, defaults(), {})
    with pytest.raises(OptionError):
        check_form({"report_out": [str(reports / "out" / "x.json")]}, defaults(), {})


# --- the web UI's origin rule --------------------------------------------------------------------

def test_only_this_web_uis_origin_and_host_may_change_state():
    ok = allowed_authorities("127.0.0.1", 8089)
    assert {"127.0.0.1:8089", "localhost:8089", "[::1]:8089"} <= ok
    assert refusal("POST", "127.0.0.1:8089", "http://127.0.0.1:8089", "same-origin", ok) is None
    assert refusal("POST", "localhost:8089", None, None, ok) is None   # curl, a script
    for host, origin, site in [("127.0.0.1:8089", "http://evil.example", "cross-site"),
                               ("127.0.0.1:8089", "null", None),
                               ("127.0.0.1:8089", "http://127.0.0.1:3000", "same-site"),   # another local app
                               ("127.0.0.1:8089", "https://127.0.0.1:8089", None),
                               ("127.0.0.1:8089", None, "cross-site"),
                               ("evil.example:8089", None, None)]:                        # DNS rebinding
        assert refusal("POST", host, origin, site, ok), (host, origin, site)
    assert refusal("GET", "127.0.0.1:8089", None, "cross-site", ok) is None   # a link to the page
    assert refusal("GET", "127.0.0.1:8089", "http://evil.example", None, ok)  # a cross-site read
    assert "loadlab.example:8089" in allowed_authorities("127.0.0.1", 8089, "loadlab.example")


# --- the client factory ---------------------------------------------------------------------------

def test_make_client_checks_the_target_before_any_factory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="unknown target"):
        make_client("touch PWNED", "r", factory="os:popen")
    assert not Path("PWNED").exists()
    assert make_client("local", "http://fake", factory="tests.fakeclient:make_client").name == "fake"
    with pytest.raises(ValueError):
        check_factory("os:popen; rm")
