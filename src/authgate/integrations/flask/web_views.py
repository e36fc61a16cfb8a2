"""The browser side: ``/authgate.js`` (the JS client) for every app, and the login, register,
account and admin pages for the standalone server. Plain files, no build step, no CDN."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"

# Scripts and styles from this origin only, no inline code; avatars may come from providers.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

client_blueprint = Blueprint("authgate_client", __name__)
pages_blueprint = Blueprint("authgate_pages", __name__)


@client_blueprint.get("/authgate.js")
def client_module() -> Response:
    response = send_from_directory(WEB_DIR, "authgate.js", mimetype="text/javascript")
    # A module script from another origin is fetched with CORS: let any page import it (it is
    # public code, and it is fetched without credentials).
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _page(name: str) -> Response:
    response = send_from_directory(PAGES_DIR, f"{name}.html", mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@pages_blueprint.get("/")
def login_page() -> Response:
    return _page("login")


@pages_blueprint.get("/register")
def register_page() -> Response:
    return _page("register")


@pages_blueprint.get("/account")
def account_page() -> Response:
    return _page("account")


@pages_blueprint.get("/admin/users")
def admin_users_page() -> Response:
    return _page("admin-users")


@pages_blueprint.get("/static/authgate/<path:filename>")
def page_asset(filename: str) -> Response:
    """Page scripts and styles (``send_from_directory`` refuses paths outside the folder)."""
    mimetype = "text/javascript" if filename.endswith(".js") else None
    response = send_from_directory(STATIC_DIR, filename, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
