"""The guard in front of Locust's web UI for `locustfiles/decompose.py`. The web UI is a remote
control of the load generator (it starts runs, picks targets and files), and a browser sends a
simple form POST to it from any site without a preflight, so:

- Every request must name this web UI in its `Host` header (127.0.0.1, localhost, [::1], --web-host,
  --web-allowed-hosts; with the web port): a DNS-rebinding page reaches 127.0.0.1 under its own name.
- A request with an `Origin` header must come from that same origin (scheme, host, port), or it is
  403 — cross-site pages, `Origin: null` (sandboxed frames) and other local ports alike. A POST
  without `Origin` is a non-browser client (curl, a script; browsers always send it on POST) and
  is let through, unless its `Sec-Fetch-Site` says another site sent it. A local process can reach
  the port anyway: `--web-login` is what keeps other local users out.
- `/swarm` takes only the fields its form shows, each checked (`locustfiles/options.py`): a 400
  JSON answer `{"success": false, "message": ...}` that changes nothing. `/user` (the class picker's
  route; this locustfile's shape picks the user class) is refused.
- `--web-login` works: the user name is `$LOADLAB_WEB_USER` (default `loadlab`), the password
  `$LOADLAB_WEB_PASSWORD` (required), the session key `$LOADLAB_WEB_SECRET_KEY` or a random one per
  start. Locust keeps its login state in Flask's signed session and sets no key, which is why every
  page answered "no secret key".
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, request, session, url_for
from flask_login import UserMixin, current_user, login_user

from locustfiles.options import OptionError, check_form

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
ALL_INTERFACES = ("", "*", "0.0.0.0", "::")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
USER_ENV, PASSWORD_ENV, SECRET_KEY_ENV = "LOADLAB_WEB_USER", "LOADLAB_WEB_PASSWORD", "LOADLAB_WEB_SECRET_KEY"
MAX_BODY = 1 << 20   # a form is a few hundred bytes; nothing bigger is parsed into memory


def allowed_authorities(web_host: str, web_port: int, extra: str = "") -> set[str]:
    """The `host:port` values a request to this web UI may carry in `Host` and `Origin`."""
    names = {*LOOPBACK, *(n.strip() for n in extra.split(",") if n.strip())}
    if web_host in ALL_INTERFACES:
        names |= {socket.gethostname(), socket.getfqdn()}
    else:
        names.add(f"[{web_host}]" if ":" in web_host else web_host)
    authorities = {f"{n.lower()}:{web_port}" for n in names}
    if web_port in (80, 443):   # browsers leave the default port out
        authorities |= {n.lower() for n in names}
    return authorities


def refusal(method: str, host: str, origin: str | None, fetch_site: str | None,
            authorities: set[str], scheme: str = "http") -> str | None:
    """Why a request is not from this web UI's own pages (None: it may be). See the module's doc."""
    if host.lower() not in authorities:
        return f"Host {host!r} is not this web UI"
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme != scheme or parts.netloc.lower() not in authorities or parts.path not in ("", "/"):
            return f"Origin {origin!r} is not this web UI"
    if method not in SAFE_METHODS and fetch_site in ("cross-site", "same-site"):
        return f"a {fetch_site} request may not change this web UI's state"
    return None


def install(web_ui, options, from_cli: dict[str, object]) -> None:
    """Put the guard in front of every route of `web_ui` (Locust's WebUI, before it starts);
    `from_cli` is the command line's options, a path the form sends back unchanged stays allowed."""
    app = web_ui.app
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    authorities = allowed_authorities(options.web_host, options.web_port, options.web_allowed_hosts)
    scheme = "https" if options.tls_cert and options.tls_key else "http"
    if options.web_login:
        _enable_login(web_ui, options.web_base_path or "")

    @app.before_request
    def _guard():
        why = refusal(request.method, request.host, request.headers.get("Origin"),
                      request.headers.get("Sec-Fetch-Site"), authorities, scheme)
        if why:
            return _answer(403, why)
        if request.endpoint == "locust.update_user":
            return _answer(403, "this locustfile takes no user class settings from the web UI")
        if request.endpoint == "locust.swarm" and _logged_in(web_ui):
            try:
                check_form(request.form.to_dict(flat=False), web_ui.environment.parsed_options, from_cli)
            except OptionError as err:
                return _answer(400, str(err))
        return None   # on to Locust's own handler (which asks for the login when --web-login)


def _answer(status: int, message: str):
    return jsonify({"success": False, "message": message}), status


def _logged_in(web_ui) -> bool:
    # before the login, Locust's handler answers with its redirect to the login page: a form check
    # first would tell anyone which values the run would take
    return not web_ui.web_login or current_user.is_authenticated


def login_credentials() -> tuple[str, str]:
    """(user, password) of --web-login from the environment; OptionError without a password."""
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise OptionError(f"--web-login needs the web UI's password in ${PASSWORD_ENV}")
    return os.environ.get(USER_ENV) or "loadlab", password


class _Operator(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def _enable_login(web_ui, base_path: str) -> None:
    """Locust's --web-login page with a user name and password form checked against the environment."""
    user, password = login_credentials()
    app = web_ui.app
    # A random key per start is enough: a restart only logs everyone out.
    app.secret_key = os.environ.get(SECRET_KEY_ENV) or secrets.token_hex(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    web_ui.login_manager.user_loader(lambda name: _Operator(name) if name == user else None)
    web_ui.auth_args = {"username_password_callback": f"{base_path}/login_submit"}
    login = Blueprint("loadlab_login", __name__, url_prefix=base_path or None)

    @login.route("/login_submit", methods=["POST"])
    def login_submit():
        # compare_digest on both, always: the time taken says nothing about which one was wrong
        good_user = hmac.compare_digest(request.form.get("username", "").encode(), user.encode())
        good_password = hmac.compare_digest(request.form.get("password", "").encode(), password.encode())
        if good_user and good_password:
            login_user(_Operator(user))
            return redirect(url_for("locust.index"))
        session["auth_error"] = "Invalid username or password"
        return redirect(url_for("locust.login"))

    app.register_blueprint(login)
