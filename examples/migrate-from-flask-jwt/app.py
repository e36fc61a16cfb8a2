"""The same app after the cutover: authgate does the logins (``POST /api/auth/login``), the old
``jwt`` cookies are exchanged for authgate sessions until the cut-off, and ``/api/id`` answers
as before. The users were imported with ``authgate users import`` (README.md).

    AUTHGATE_DATABASE_URL=sqlite:///$PWD/instance/authgate.db \\
    AUTHGATE_LEGACY_JWT_SECRET="$SECRET_KEY" AUTHGATE_LEGACY_JWT_CLAIM=_uid \\
    AUTHGATE_LEGACY_JWT_USER_COLUMN=username AUTHGATE_LEGACY_JWT_CUTOFF=2027-03-01T00:00:00Z \\
    python app.py                              # http://localhost:8086
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_from_directory

from authgate import AuthGate, current_user, token_required

HERE = Path(__file__).resolve().parent


def create_app() -> Flask:
    """Settings come from ``AUTHGATE_*`` environment variables (or ``app.config``)."""
    app = Flask(__name__, static_folder=HERE / "static")
    AuthGate(app)

    @app.get("/api/id")
    @token_required()
    def whoami() -> dict[str, str | None]:
        return {"uid": current_user.username, "name": current_user.name}

    @app.get("/")
    def index() -> Response:
        return send_from_directory(HERE / "static", "index.html")

    return app


if __name__ == "__main__":
    create_app().run(port=8086)
