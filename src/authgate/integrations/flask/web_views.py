"""The browser side: ``/authgate.js`` (the JS client) for every app, and the login, register,
account and admin pages — and those of the mailed links (reset a password, verify or change an
address, accept an invitation) — for the standalone server. Plain files, no build step, no CDN."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from authgate.http.routes import (
    CONFIRM_EMAIL_CHANGE_PAGE,
    INVITATION_PAGE,
    RESET_PASSWORD_PAGE,
    VERIFY_EMAIL_PAGE,
)

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


@pages_blueprint.get("/admin/users/<user_id>")
def admin_user_page(user_id: str) -> Response:
    """One user (the page reads the id from its path and asks the admin API)."""
    return _page("admin-user")


@pages_blueprint.get("/admin/audit")
def admin_audit_page() -> Response:
    return _page("admin-audit")


# The pages the mailed links open (``{AUTHGATE_LINK_BASE_URL}/<page>#token=…``, paths shared with
# the service that builds the links) and the form that asks for a reset link. Each page reads its
# token from the fragment, which never reaches this server.
@pages_blueprint.get("/forgot-password")
def forgot_password_page() -> Response:
    return _page("forgot-password")


@pages_blueprint.get(RESET_PASSWORD_PAGE)
def reset_password_page() -> Response:
    return _page("reset-password")


@pages_blueprint.get(VERIFY_EMAIL_PAGE)
def verify_email_page() -> Response:
    return _page("verify-email")


@pages_blueprint.get(CONFIRM_EMAIL_CHANGE_PAGE)
def confirm_email_change_page() -> Response:
    return _page("confirm-email-change")


@pages_blueprint.get(INVITATION_PAGE)
def invitation_page() -> Response:
    return _page("invitation")


@pages_blueprint.get("/static/authgate/<path:filename>")
def page_asset(filename: str) -> Response:
    """Page scripts and styles (``send_from_directory`` refuses paths outside the folder)."""
    mimetype = "text/javascript" if filename.endswith(".js") else None
    response = send_from_directory(STATIC_DIR, filename, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
