"""The app before authgate, in the seed tutorial's style: ``POST /api/users/authenticate`` checks
``uid`` and ``password`` and sets an HS256 ``jwt`` cookie signed with ``SECRET_KEY``;
``@token_required()`` reads it back. (Trimmed: plain ``sqlite3`` instead of Flask-SQLAlchemy, no
Flask-RESTful; the same cookie and claims.)

    SECRET_KEY=... python legacy_app.py        # http://localhost:8087, volumes/sqlite.db
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, Response, current_app, request, send_from_directory
from werkzeug.security import check_password_hash

HERE = Path(__file__).resolve().parent


def _find_user(uid: str) -> sqlite3.Row | None:
    with sqlite3.connect(current_app.config["DATABASE"]) as db:
        db.row_factory = sqlite3.Row
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM users WHERE _uid = ?", (uid,)
        ).fetchone()
        return row


def token_required() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            token = request.cookies.get("jwt")
            if not token:
                return {"message": "Authentication Token is missing!"}, 401
            try:
                data = jwt.decode(token, current_app.config["SECRET_KEY"], algorithms=["HS256"])
            except jwt.InvalidTokenError:
                return {"message": "Invalid Authentication token!"}, 401
            user = _find_user(data["_uid"])
            if user is None:
                return {"message": "Invalid Authentication token!"}, 401
            return view(user, *args, **kwargs)

        return decorated

    return decorator


def create_app(database: str | Path, secret_key: str) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config["SECRET_KEY"] = secret_key
    app.config["DATABASE"] = str(database)

    @app.post("/api/users/authenticate")
    def authenticate() -> Any:
        body = request.get_json(silent=True) or {}
        user = _find_user(str(body.get("uid", "")))
        if user is None or not check_password_hash(user["_password"], str(body.get("password"))):
            return {"message": "Invalid user id or password"}, 401
        token = jwt.encode({"_uid": user["_uid"]}, app.config["SECRET_KEY"], algorithm="HS256")
        response = Response(f"Authentication for {user['_uid']} successful")
        response.set_cookie(
            "jwt", token, max_age=3600, secure=True, httponly=True, path="/", samesite="None"
        )
        return response

    @app.get("/api/id")
    @token_required()
    def whoami(user: sqlite3.Row) -> dict[str, str]:
        return {"uid": user["_uid"], "name": user["_name"]}

    @app.get("/")
    def index() -> Response:
        return send_from_directory(HERE / "static", "legacy.html")

    @app.get("/<path:name>")
    def static_file(name: str) -> Response:
        return send_from_directory(HERE / "static", name)

    return app


if __name__ == "__main__":
    create_app(HERE / "volumes" / "sqlite.db", os.environ["SECRET_KEY"]).run(port=8087)
