"""The options of `locustfiles/decompose.py` and the one check of each, shared by the two places a
value comes from:

- the command line, checked at start (`check_options`): a bad value, or options that together make
  no run, is one line `locust: error: ...` and exit code 2, before any request;
- the web UI's form (`check_form`, called by `locustfiles/webui.py` before Locust's `/swarm` handler):
  a 400 answer that changes nothing. The form may set only the fields it shows; a path it sets must
  lie under the project's `reports/` (unless it is the command line's own value, sent back unchanged),
  and `--client-factory` (code imported by name) is never one of them.

No locust import here: the checks are tested without gevent's monkey-patching.
"""

from __future__ import annotations

import math
import re
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from clients.factory import TARGETS, check_factory, check_target
from loadlab.arrival_modes import ARRIVAL_MODES, RATE_MODES
from loadlab.cases import parse_cases
from loadlab.schema import Report
from loadlab.trace import MAX_ROWS
from locustfiles.arrivals import cap_share, parse_rates
from locustfiles.report import open_plan_from_options, plan_from_options
from locustfiles.stages import DEFAULT_MAX_STAGE_S, DEFAULT_STAGES, parse_stages

REPORTS = Path(__file__).resolve().parent.parent / "reports"
# Bounds: far above any real run of this project, low enough that no value makes the load generator
# plan more than it can hold (a rate of 1e9/s is 6e10 arrivals in memory for a 60 s stage).
MAX_SECONDS = 7 * 86400
MAX_USERS = 10_000
MAX_STAGES = 100
MAX_RATE = 10_000.0
MAX_ARRIVALS = MAX_ROWS          # the same bound as a replayed trace
MAX_IN_FLIGHT = 100_000
MAX_TEXT = 200


class OptionError(ValueError):
    """A bad option value, or options that together make no run; the message names the option and
    is the whole error line."""


Rule = Callable[[object, str], object]   # (value, flag) -> the value as the option holds it


# --- rules ---------------------------------------------------------------------------------------

def integer(low: int, high: int) -> Rule:
    def rule(value, flag):
        try:
            n = int(str(value).strip())
        except ValueError:
            n = None
        if n is None or not low <= n <= high:
            raise OptionError(f"{flag} must be an integer from {low} to {high:,}, got {value!r}")
        return n
    return rule


def number(low: float, high: float, above: bool = False) -> Rule:
    """A finite float in [low, high], or (low, high] when `above`."""
    def rule(value, flag):
        try:
            x = float(str(value).strip())
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and (x > low if above else x >= low) and x <= high):
            raise OptionError(f"{flag} must be a number {'>' if above else '>='} {low:g} and <= {high:g}, got {value!r}")
        return x
    return rule


def one_of(choices: tuple[str, ...]) -> Rule:
    def rule(value, flag):
        if value not in choices:
            raise OptionError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        return value
    return rule


def text(max_len: int = MAX_TEXT) -> Rule:
    """A short printable string: it ends up in logs, file names and the report."""
    def rule(value, flag):
        value = "" if value is None else str(value)
        if len(value) > max_len or not value.isprintable():
            raise OptionError(f"{flag} must be printable text of at most {max_len} characters, got {value[:40]!r}")
        return value
    return rule


def parsed_by(parse: Callable[[str], object]) -> Rule:
    """A rule from one of the project's parsers (`parse_cases`, `check_target`, ...); the option keeps
    its text, which the plan parses again. The parsers' messages name the option already
    (`--rates needs ...`) or not (`unknown case(s) ...`)."""
    def rule(value, flag):
        try:
            parse(value)
        except ValueError as err:
            message = str(err)
            raise OptionError(message if message.startswith(flag) else f"{flag}: {message}") from None
        return value
    return rule


def each_at_most(parse: Callable[[str], list], high: float, what: str) -> Rule:
    """A comma list parsed by `parse` with at most MAX_STAGES entries, each <= high."""
    def check(value):
        values = parse(value)
        if len(values) > MAX_STAGES or max(values) > high:
            raise ValueError(f"at most {MAX_STAGES} {what}, each <= {high:g}, got {value!r}")
        return values
    return parsed_by(check)


def rates(value, flag):
    # empty: a closed-loop run has none (an open-loop run without rates is refused by check_run)
    return "" if not str(value).strip() else each_at_most(parse_rates, MAX_RATE, "rates")(value, flag)


def urls(value, flag):
    """'' or a comma list of http(s) URLs ('vertex_url,local_url' for the fallback); empty parts are
    left to the client, which says what it needs."""
    for part in str(value or "").split(","):
        url = urlsplit(part.strip())
        if part.strip() and (url.scheme not in ("http", "https") or not url.netloc):
            raise OptionError(f"{flag} must be http(s) URLs separated by commas, got {value!r}")
    return value


def host_names(value, flag):
    for name in str(value).split(","):
        if name.strip() and not re.fullmatch(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]", name.strip()):
            raise OptionError(f"{flag} must be host names or addresses separated by commas, got {value!r}")
    return value


def time_span(value, flag):
    # what Locust's parse_timespan reads (20, 20s, 3m, 1h20m): checked here so a bad value is a 400
    if str(value) and not re.fullmatch(r"\d+|(\d+h)?(\d+m)?(\d+s)?", str(value).strip()):
        raise OptionError(f"{flag} must be a time span such as 20, 20s, 3m or 1h20m, got {value!r}")
    return value


def under_reports(suffix: str) -> Rule:
    """A path from the web UI: resolved (symlinks and `..` followed) from the working directory, as
    the run will use it, it must lie under the project's reports/ and end in `suffix`. A request
    must not choose where the load generator writes, nor which file it reads. '' = the default."""
    def rule(value, flag):
        if not value:
            return value
        path = (Path.cwd() / str(value)).resolve()
        if not path.is_relative_to(REPORTS.resolve()) or path.suffix != suffix:
            raise OptionError(f"{flag} from the web UI must be a {suffix} file under {REPORTS}, got {value!r}")
        return value
    return rule


def calibration(value, flag):
    """'' or a measured report (a separate calibration run): its service times drive the web UI's
    prediction (`locustfiles/cockpit.py`); read here so a bad file is refused at start."""
    if not value:
        return value
    try:
        report = Report.load(value)
    except (OSError, ValueError) as err:
        raise OptionError(f"{flag} must be a measured report (JSON, loadlab/schema.py): {str(err).splitlines()[0]}") from None
    if not any(j.status == "completed" and j.service_s is not None for s in report.stages for j in s.jobs):
        raise OptionError(f"{flag} {value!r} has no completed job with a service time")
    return value


def replica_samples(value, flag):
    """'' or the replica recorder's samples file (JSON lines), tailed by the Cockpit tab: it may not
    exist yet (the recorder may start after Locust), but its directory must, and it is no directory."""
    value = text(4096)(value, flag)
    if not value:
        return value
    path = Path(value)
    if path.is_dir() or not path.parent.is_dir():
        raise OptionError(f"{flag} must be a file (it may not exist yet) in an existing directory, got {value!r}")
    return value


# --- the options ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One option of the locustfile: its argparse definition and its check. `web`: shown in the web
    UI's form, and so accepted from it; `web_rule`: what a value from the form must pass as well."""

    flag: str
    type: type
    default: object
    rule: Rule
    help: str
    web: bool = True
    web_rule: Rule | None = None
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def check(self, value, from_web: bool = False):
        value = self.rule(value, self.flag)
        return self.web_rule(value, self.flag) if from_web and self.web_rule else value

    def add_to(self, parser) -> None:
        parser.add_argument(self.flag, type=self.type, default=self.default, choices=self.choices,
                            help=self.help, include_in_web_ui=self.web)


# The web form shows them in this order: what the run is (shape, cases, target, SLO, calibration) first.
OPTIONS = (
    Option("--arrival", str, "closed", one_of(ARRIVAL_MODES), choices=ARRIVAL_MODES,
           help=f"closed: --stages of N users (or bursts); {'|'.join(RATE_MODES)}: open loop at --rates; "
                "trace: replay --trace"),
    Option("--stages", str, ",".join(map(str, DEFAULT_STAGES)), each_at_most(parse_stages, MAX_USERS, "stages"),
           help="closed loop: comma list of concurrent users per stage (default 1,5,10,20)"),
    Option("--rates", str, "", rates,
           help="open loop: comma list of arrival rates (per second), one stage each, e.g. 0.2,0.5,1"),
    Option("--cases", str, "light", parsed_by(parse_cases),
           help="case set or list: article | light | small | small,medium,large (loadlab/cases.py)"),
    Option("--target", str, "local", parsed_by(check_target), choices=TARGETS,
           help="client the users drive: the local job API or the Vertex AI adapter"),
    Option("--slo-e2e", float, 0.0, number(0, MAX_SECONDS),
           help="end-to-end SLO in seconds: each stage reports SLO attainment and goodput (0 = none)"),
    Option("--calibration", str, "", calibration, web_rule=under_reports(".json"),
           help="a measured report of a separate calibration run: the Cockpit tab shows the simulator's "
                "prediction with its service times (from the web UI: a .json file under reports/)"),
    Option("--replica-samples", str, "", replica_samples, web=False,
           help="the replica recorder's samples file of a Ray Serve target (bench/replicas; `bench autoscale` "
                "passes it): the Cockpit tab charts target/starting/running replicas; command line only"),
    Option("--stage-seconds", float, 60.0, number(0, MAX_SECONDS, above=True),
           help="how long each closed-loop or rate stage is held; the trace window per stage"),
    Option("--jobs-per-user", int, 0, integer(0, MAX_USERS),
           help="hold each stage until every user ran N jobs; 1 = all at once (article); 0 = closed loop"),
    Option("--max-stage-seconds", float, DEFAULT_MAX_STAGE_S, number(0, MAX_SECONDS),
           help=f"upper bound on a --jobs-per-user stage (default {DEFAULT_MAX_STAGE_S:g} s; 0 = none)"),
    Option("--burstiness", float, 1.0, number(0, 1000, above=True),
           help="gamma arrivals: shape K (1 = Poisson, < 1 burstier), as vLLM bench serve defines it"),
    Option("--trace", str, "", text(4096), web_rule=under_reports(".csv"),
           help="trace arrivals: CSV with header t_s,case (from the web UI: a file under reports/)"),
    Option("--time-scale", float, 1.0, number(0, 1e6, above=True), help="trace arrivals: replay t_s / K"),
    Option("--seed", int, 1, integer(0, 2**32 - 1), help="seed of the open-loop arrival sequence"),
    Option("--max-in-flight", int, 0, integer(0, MAX_IN_FLIGHT),
           help="open loop: an arrival finding N jobs in flight is recorded as dropped, never delayed (0 = no cap)"),
    Option("--report-out", str, "", text(4096), web_rule=under_reports(".json"),
           help="measured report path (default reports/measured/locust-<target>-<mode>-<time>.json; "
                "from the web UI: a .json file under reports/)"),
    Option("--report-name", str, "", text(), help="report name (default derived from target and mode)"),
    Option("--client-factory", str, "", parsed_by(check_factory), web=False,
           help="module:function(target, url) building the client (default: clients/; tests use "
                "tests.fakeclient:make_client); each process's own command line, never the web UI"),
    Option("--web-allowed-hosts", str, "", host_names, web=False,
           help="more host names the web UI answers to (it answers to 127.0.0.1, localhost and --web-host; "
                "needed with --web-host '*' or behind a proxy)"),
)
BY_DEST = {option.dest: option for option in OPTIONS}

# The web form's fields of Locust's own options: form key -> (parsed_options attribute, flag, rule).
LOCUST_FIELDS: dict[str, tuple[str, str, Rule]] = {
    "user_count": ("num_users", "--users", integer(0, MAX_USERS)),
    # the shape sets the users: the form sends its disabled user count and ramp-up as 0
    "spawn_rate": ("spawn_rate", "--spawn-rate", number(0, MAX_USERS)),
    "host": ("host", "--host", urls),
    "run_time": ("run_time", "--run-time", time_span),
    "profile": ("profile", "--profile", text()),
}


def add_options(parser) -> None:
    for option in OPTIONS:
        option.add_to(parser)


# --- checks --------------------------------------------------------------------------------------

def check_run(options: Namespace, processes: int = 1) -> None:
    """What only the options together say: the run's plan can be built (a trace is read and its
    cases known), its arrivals fit in memory, and a --max-in-flight cap covers every process."""
    try:
        if options.arrival == "closed":
            plan_from_options(options)
            parse_cases(options.cases)
            return
        plan = open_plan_from_options(options)
        if plan.arrival != "trace" and sum(plan.rates) * plan.stage_seconds > MAX_ARRIVALS:
            raise OptionError(f"--rates x --stage-seconds plans more than {MAX_ARRIVALS:,} arrivals")
        cap_share(options.max_in_flight, processes, 0)
    except OptionError:
        raise
    except ValueError as err:
        raise OptionError(str(err)) from None


def check_options(options: Namespace, processes: int = 1) -> None:
    """The command line's check at start: every option (the checked values replace the parsed
    ones), Locust's --host, then the run they make. OptionError on the first problem."""
    for option in OPTIONS:
        setattr(options, option.dest, option.check(getattr(options, option.dest)))
    urls(options.host, "--host")
    if getattr(options, "class_picker", False):
        raise OptionError("--class-picker: this locustfile's shape picks the user class of --target")
    check_run(options, processes)


def check_form(form: dict[str, list[str]], options: Namespace, from_cli: dict[str, object]) -> Namespace:
    """A /swarm form (key -> its values) checked against the current `options`: only the fields the
    form shows, one value each, each passing its option's check, and the run they make. A path sent
    back unchanged from the command line (`from_cli`) is the operator's choice and stays allowed.
    Returns the options the form would make (a copy); OptionError otherwise, and nothing changed."""
    shown = {*LOCUST_FIELDS, *(o.dest for o in OPTIONS if o.web)}
    # a field the form does not show is refused before any value is looked at: it is never a typo
    # of the form, only a request written by hand
    for key, values in form.items():
        if key not in shown:
            raise OptionError(f"the web UI does not set {key!r}; its fields are {', '.join(sorted(shown))}")
        if len(values) != 1:
            raise OptionError(f"{key} is given {len(values)} times")
    merged = Namespace(**vars(options))
    for key, (value,) in form.items():
        dest, checked = _check_field(key, value, from_cli)
        setattr(merged, dest, checked)
    check_run(merged)
    return merged


def _check_field(key: str, value: str, from_cli: dict[str, object]) -> tuple[str, object]:
    if key in LOCUST_FIELDS:
        dest, flag, rule = LOCUST_FIELDS[key]
        return dest, rule(value, flag)
    option = BY_DEST[key]
    return option.dest, option.check(value, from_web=value != from_cli.get(option.dest))
