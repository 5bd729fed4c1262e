"""The Dash app: pages, shell, sign-in wiring and the health routes.

`create_app(...)` builds it; gunicorn can serve `taskmaster_dash.app:server`, which opens the
database from the environment on first use.
"""

from __future__ import annotations

from contextlib import ExitStack

import dash
from dash import ClientsideFunction, Dash, Input, Output, clientside_callback, dcc, html
from flask import Flask, Response, g, jsonify, request
from flask_wtf.csrf import generate_csrf

from taskmaster_dash.alerts import banner as alert_banner  # registers the banner's callback
from taskmaster_dash.api.analytics import panels_as_json
from taskmaster_dash.api.framework import init_api
from taskmaster_dash.auth.headers import init_security_headers
from taskmaster_dash.auth.login import LoginPolicy, init_auth
from taskmaster_dash.auth.permissions import has_permission, signed_in_user
from taskmaster_dash.auth.scrape import refuse_metrics_request
from taskmaster_dash.data.config import Settings, SettingsError, load_settings
from taskmaster_dash.data.db import Database, request_scope
from taskmaster_dash.data.health import basic_health, detailed_health
from taskmaster_dash.data.metrics import render_metrics
from taskmaster_dash.data.prometheus import PrometheusReader
from taskmaster_dash.pages._guard import callback_failed, message_area
from taskmaster_dash.pages._guard import install as install_input_guard
from taskmaster_dash.pages._ui import APP_TITLE
from taskmaster_dash.resources import shipped
from taskmaster_dash.services import Services, install


def navigation() -> html.Nav:
    """Links to every page the signed-in user may open, in each page's `order`."""
    pages = sorted(
        dash.page_registry.values(),
        key=lambda p: (99 if p.get("order") is None else p["order"], p["name"]),
    )
    links = [
        dcc.Link(
            page["name"],
            href=page["relative_path"],
            className="nav-link",
            id=f"nav-{page['module'].split('.')[-1]}",
        )
        for page in pages
        if page.get("nav", True) and has_permission(page.get("permission"))
    ]
    return html.Nav(links, className="nav")


def sign_out_form() -> html.Form:
    """Signing out is a POST with the CSRF token: no other site can sign a user out."""
    return html.Form(
        [
            dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
            html.Button(
                "Sign out", type="submit", className="nav-link link-button", id="logout-link"
            ),
        ],
        method="post",
        action=dash.get_relative_path("/logout"),
        className="sign-out",
    )


def shell() -> html.Div:
    user = signed_in_user()
    account = (
        [
            dcc.Link(
                f"{user.username} ({user.record.role_name})",
                href=dash.get_relative_path("/account"),
                className="user-name",
                id="user-name",
                title="Your account",
            ),
            sign_out_form(),
        ]
        if user
        else []
    )
    return html.Div(
        [
            dcc.Store(id="theme-store", storage_type="local"),
            html.Header(
                [
                    html.A(APP_TITLE, href=dash.get_relative_path("/"), className="brand"),
                    navigation(),
                    html.Div(
                        [
                            html.Button(
                                "◐",
                                id="theme-toggle",
                                title="Light / dark theme",
                                className="icon-button",
                            ),
                            *account,
                        ],
                        className="header-right",
                    ),
                ],
                className="header",
            ),
            html.Div(id="alert-banner", className="alert-banner"),
            alert_banner.poller(),
            message_area(),
            alert_banner.action_form(),
            html.Main(dash.page_container, className="main"),
        ],
        className="shell",
    )


# The theme lives in the browser (localStorage); the server keeps no per-user UI state. Every
# AG Grid follows it through the body's data-ag-theme-mode.
clientside_callback(
    ClientsideFunction("theme", "apply"),  # assets/clientside.js
    Output("theme-store", "data"),
    Input("theme-toggle", "n_clicks"),
    dash.State("theme-store", "data"),
)


def one_read_transaction_per_request(server: Flask) -> None:
    """Every request (a callback, a page, an API call) shares one transaction per read-only pool
    among its reads (data/db.py); registered first, so the sign-in gate's reads share it too."""

    @server.before_request
    def open_scope() -> None:
        g.request_scope = scope = ExitStack()
        scope.enter_context(request_scope())

    @server.teardown_request
    def close_scope(_exc: BaseException | None) -> None:
        scope = g.pop("request_scope", None)
        if scope is not None:
            scope.close()


def create_app(
    database: Database,
    *,
    secret_key: str,
    environment: str = "production",
    login_policy: LoginPolicy | None = None,
    prometheus: PrometheusReader | None = None,
    metrics_token: str | None = None,
    settings: Settings | None = None,
    workers: bool = False,
    url_base_pathname: str = "/",  # "/dash/": the app answers under that prefix, behind a proxy
) -> Dash:
    """The app, and the process's services (services.py). With `workers`, the background
    workers start too: the rollup refresher (not under environment "testing", where tests
    refresh on demand) and the alert evaluator (unless ALERTS_EVALUATOR is off)."""
    settings = settings or load_settings()
    services = Services.build(settings, database, prometheus)
    install(services)
    app = Dash(
        "taskmaster_dash",  # the package: Dash imports pages as taskmaster_dash.pages.*
        use_pages=True,
        pages_folder=str(shipped("pages")),
        assets_folder=str(shipped("assets")),
        title=APP_TITLE,
        url_base_pathname=url_base_pathname,
        suppress_callback_exceptions=True,
        on_error=callback_failed,  # a callback that raises answers with a message, not a 500
    )
    app.layout = shell
    server = app.server
    prefix = app.config.routes_pathname_prefix
    one_read_transaction_per_request(server)
    init_auth(
        server,
        prefix=prefix,
        secret_key=secret_key,
        policy=login_policy or LoginPolicy.from_settings(settings),
        settings=settings,
    )
    init_security_headers(server, app.csp_hashes)
    init_api(server, prefix, settings.api_max_body_bytes)
    install_input_guard(app)

    @server.route(prefix + "api/v1/health")
    def health():
        body, status = basic_health(environment)
        return jsonify(body), status

    @server.route(prefix + "api/v1/health/detailed")
    def health_detailed():
        body, status = detailed_health(environment)
        return jsonify(body), status

    @server.route(prefix + "api/v1/analytics/<page>")
    def analytics(page: str):
        # Behind the sign-in gate (a session or X-API-Key); each panel checks its permission.
        body, status = panels_as_json(page, request.args.to_dict())
        return jsonify(body), status

    # The sign-in gate lets this path through; the route checks its own bearer token or session.
    server.config["METRICS_TOKEN"] = metrics_token

    @server.route(prefix + "api/v1/metrics")
    def metrics():
        refusal = refuse_metrics_request(server.config.get("METRICS_TOKEN"))
        if refusal is not None:
            return refusal
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    if workers:
        services.start_workers(refresher=environment != "testing")
    return app


def serving_secret_key(settings: Settings) -> str:
    """SECRET_KEY, which serving needs beyond valid settings (`serve` checks it before its
    workers start)."""
    if not settings.secret_key:
        raise SettingsError(
            "SECRET_KEY: must be set (any long random string, the same on every worker)"
        )
    return settings.secret_key


def app_from_environment(settings: Settings | None = None) -> Dash:
    """The app as `serve` and gunicorn run it: configuration from the environment."""
    from taskmaster_dash.data.runtime import open_database

    settings = settings or load_settings()
    secret_key = serving_secret_key(settings)
    opened = open_database(settings)
    app = create_app(
        opened.database,
        secret_key=secret_key,
        environment=settings.environment,
        prometheus=(
            PrometheusReader(settings.prometheus_url) if settings.prometheus_enabled else None
        ),
        metrics_token=settings.metrics_token,
        settings=settings,
        workers=True,
    )
    return app


def __getattr__(name: str):
    # `gunicorn taskmaster_dash.app:server` builds the app on first access, not at import.
    if name == "server":
        from sqlalchemy.exc import SQLAlchemyError

        from taskmaster_dash.data.db import user_message

        try:
            app = app_from_environment()
        except (ValueError, SQLAlchemyError) as exc:  # a bad setting or file, no database
            try:  # gunicorn prints this one as it is and stops instead of restarting workers
                from gunicorn.errors import AppImportError as Stop  # type: ignore[import-untyped]
            except ImportError:
                Stop = SystemExit
            reason = user_message(exc) if isinstance(exc, SQLAlchemyError) else exc
            raise Stop(f"taskmaster-dash: {reason}") from None
        globals()["server"] = app.server
        return app.server
    raise AttributeError(name)
