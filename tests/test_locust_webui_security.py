"""Issue 17, item 1: no code execution, no file written where a request chooses, no state changed by a
foreign page through the Locust web UI of locustfiles/decompose.py. Each test starts a real web UI
in a subprocess (not headless, a free 127.0.0.1 port, the stand-in client of tests/fakeclient.py from
the command line) and kills it at the end."""

import http.cookiejar
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from loadlab.schema import Report
from tests.locust_helpers import FAKE, web_ui

ENV = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.1"}
# the form of the issue's curl command, field for field
ATTACK = [("user_count", "1"), ("spawn_rate", "1"), ("host", "r"), ("arrival", "poisson"), ("rates", "5"),
          ("stage_seconds", "2"), ("cases", "light"), ("target", "touch PWNED"), ("client_factory", "os:popen"),
          ("report_out", "../anywhere.json")]
EVIL = "http://evil.example"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def send(base, path, form=None, headers=None, opener=None, method=None):
    """(status, body) of one request; HTTP errors and redirects are answers, not exceptions."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers or {}, method=method)
    opener = opener or urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def state(base):
    return json.loads(send(base, "/stats/requests")[1])["state"]


def files(root: Path, log: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p != log}


def start(tmp_path: Path):
    """A web UI started in tmp_path/run with --report-out tmp_path/report.json: (base URL, the log);
    `../anywhere.json` from the run directory is tmp_path/anywhere.json."""
    cwd = tmp_path / "run"
    cwd.mkdir()
    log = tmp_path / "ui.log"
    return web_ui(cwd, log, "--host", "http://fake", "--report-out", str(tmp_path / "report.json"), *FAKE, env=ENV), log


@pytest.fixture
def ui(tmp_path):
    context, log = start(tmp_path)
    with context as base:
        yield base, log


@pytest.fixture(scope="module")
def shared_ui(tmp_path_factory):
    """One web UI for the tests that expect no run to start: (base URL, its directory, the log)."""
    root = tmp_path_factory.mktemp("shared-ui")
    context, log = start(root)
    with context as base:
        yield base, root, log


def test_the_issues_swarm_post_runs_nothing_and_writes_nothing_then_a_same_origin_run_works(ui, tmp_path):
    base, log = ui
    before = files(tmp_path, log)
    from_a_page = send(base, "/swarm", ATTACK, {"Origin": EVIL})
    from_curl = send(base, "/swarm", ATTACK)   # the same form from a non-browser client: no Origin
    time.sleep(4)   # had a run started, its 2 s stage would have ended and its report been written
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*")) and not Path("PWNED").exists()
    assert not (tmp_path / "anywhere.json").exists()
    assert files(tmp_path, log) == before   # nothing written anywhere under the test's directory
    assert state(base) == "ready"
    assert from_a_page[0] == 403 and json.loads(from_a_page[1])["success"] is False, from_a_page
    # the field the form does not show is refused first, before any value is looked at
    assert from_curl[0] == 400 and "client_factory" in json.loads(from_curl[1])["message"], from_curl

    # the web UI's own page: its origin, and the report path it shows sent back unchanged
    form = [("user_count", "1"), ("spawn_rate", "1"), ("host", "http://fake"), ("arrival", "constant"), ("rates", "5"),
            ("stage_seconds", "1"), ("cases", "light"), ("target", "local"), ("report_out", str(tmp_path / "report.json"))]
    status, body = send(base, "/swarm", form, {"Origin": base})
    assert status == 200 and json.loads(body)["success"], body
    deadline = time.monotonic() + 30
    while not (tmp_path / "report.json").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    report = Report.load(tmp_path / "report.json")
    assert [(s.name, len(s.jobs)) for s in report.stages] == [("r=5/s", 5)]
    assert all(j.status == "completed" for j in report.stages[0].jobs)   # the command line's stand-in client


@pytest.mark.parametrize("field, value", [
    ("client_factory", "os:popen"),             # code by name: never from a request
    ("target", "touch PWNED"),
    ("arrival", "shell"),
    ("report_out", "../anywhere.json"),
    ("report_out", "/tmp/anywhere.json"),
    ("report_out", "reports/../../anywhere.json"),
    ("report_out", str(Path(__file__).resolve().parent.parent / "reports" / "README.md")),   # not a .json
    ("trace", "/etc/passwd"),
    ("host", "r"),
    ("max_in_flight", "-1"),
    ("seed", "-1"),
    ("stage_seconds", "inf"),
    ("rates", "1e9"),
    ("stages", "0"),
    ("cases", "nope"),
    ("html_file", "../x.html"),                 # Locust's own options the form does not show
    ("csv_prefix", "../x"),
    ("locustfile", "os"),
], ids=lambda v: v if len(v) < 30 else v[-20:])
def test_a_field_not_shown_or_a_bad_value_is_a_400_naming_it_and_changes_nothing(shared_ui, field, value):
    base, root, log = shared_ui
    before = files(root, log)
    form = {"host": "http://fake", "arrival": "constant", "rates": "5", "stage_seconds": "1", field: value}
    status, body = send(base, "/swarm", form, {"Origin": base})
    answer = json.loads(body)
    assert status == 400 and answer["success"] is False, (status, body)
    assert field.replace("_", "-") in answer["message"] or field in answer["message"], answer
    assert state(base) == "ready" and files(root, log) == before


def test_state_changing_routes_refuse_a_foreign_origin_or_host(shared_ui):
    base, _, _ = shared_ui
    port = base.rsplit(":", 1)[1]
    foreign = [{"Origin": EVIL}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
               {"Origin": f"https://127.0.0.1:{port}"}, {"Sec-Fetch-Site": "cross-site"},
               {"Host": f"evil.example:{port}"}]
    for path in ("/swarm", "/stop", "/stats/reset", "/user"):
        for headers in foreign:
            status, body = send(base, path, {}, headers)
            assert status == 403 and json.loads(body)["success"] is False, (path, headers, status, body)
    assert send(base, "/", headers={"Host": f"evil.example:{port}"})[0] == 403   # DNS rebinding: reads too
    assert send(base, "/stats/requests", headers={"Origin": EVIL})[0] == 403     # no cross-site reads
    for headers in ({"Origin": base}, {"Origin": f"http://localhost:{port}"}, {}):   # its own page; curl
        assert send(base, "/stats/reset", {}, headers)[0] == 200, headers
    assert send(base, "/user", {}, {"Origin": base})[0] == 403   # the class picker's route: not used here
    assert state(base) == "ready"


def test_web_login_asks_for_the_password_then_the_session_runs(tmp_path):
    cwd = tmp_path / "run"
    cwd.mkdir()
    env = {**ENV, "LOADLAB_WEB_PASSWORD": "correct horse", "LOADLAB_WEB_USER": "op"}
    with web_ui(cwd, tmp_path / "ui.log", "--web-login", "--host", "http://fake",
                "--report-out", str(tmp_path / "report.json"), *FAKE, env=env) as base:
        status, body = send(base, "/")
        assert status == 302 and "/login" in body and "secret key" not in body, (status, body)
        assert send(base, "/login")[0] == 200
        status, _ = send(base, "/swarm", {"host": "http://fake", "stages": "1", "jobs_per_user": "1"}, {"Origin": base})
        assert status == 302 and send(base, "/stats/requests")[0] == 302   # not logged in: to the login page
        time.sleep(2)
        assert not (tmp_path / "report.json").exists()   # and no run

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPCookieProcessor(jar))
        status, body = send(base, "/login_submit", {"username": "op", "password": "wrong"}, {"Origin": base}, opener)
        assert status == 302 and "/login" in body
        assert send(base, "/", opener=opener)[0] == 302   # still logged out
        status, body = send(base, "/login_submit", {"username": "op", "password": "correct horse"}, {"Origin": base},
                            opener)
        assert status == 302
        assert send(base, "/", opener=opener)[0] == 200
        # logged in: the form is still checked, and a good one runs
        status, body = send(base, "/swarm", {"client_factory": "os:popen"}, {"Origin": base}, opener)
        assert status == 400, body
        status, body = send(base, "/swarm", {"host": "http://fake", "stages": "1", "jobs_per_user": "1"},
                            {"Origin": base}, opener)
        assert status == 200 and json.loads(body)["success"], body
        deadline = time.monotonic() + 30
        while not (tmp_path / "report.json").exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert [(s.name, len(s.jobs)) for s in Report.load(tmp_path / "report.json").stages] == [("u=1", 1)]

