"""The framework ceilings: a bare Flask app with no authentication.

``benchmarks/run.py`` serves it under the same gunicorn settings as authgate, so

- the difference between ``GET /me`` here and ``GET /api/auth/me`` on authgate is what authgate's
  hot path costs, and
- the difference between ``POST /verify`` here (parse the same JSON login body, one argon2id
  verify with the server's parameters, a small JSON answer) and ``POST /api/auth/login`` is what
  a login costs beyond its hash: user lookup, throttling, the session transaction, token signing
  and cookies;
- ``POST /login`` here is the least a password login must do beyond its hash, written by hand
  for scale: find the user (raw ``sqlite3``), verify, record the login, a session and its refresh
  token in one ``BEGIN IMMEDIATE`` transaction, sign an EdDSA access token (``cryptography``,
  the JWS put together by hand) and set two cookies. No validation, throttling, CSRF, CORS,
  ORM or JWT library: a floor to compare with, not a way to write a login.

The argon2id parameters come from ``BARE_ARGON2`` (``time_cost,memory_cost_kib,parallelism``) and
the password from ``BARE_PASSWORD``; the hash is made once at import. ``POST /login`` keeps its
SQLite database in ``BARE_DB`` (created at import with the one user ``BARE_LOGIN``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, Response, abort, jsonify, request

from authgate.core.passwords import PasswordHasher

app = Flask("bare")
app.json.sort_keys = False  # type: ignore[attr-defined]  # as authgate's server does

_time_cost, _memory_cost_kib, _parallelism = (
    int(part) for part in os.environ.get("BARE_ARGON2", "2,19456,1").split(",")
)
_hasher = PasswordHasher(
    time_cost=_time_cost, memory_cost_kib=_memory_cost_kib, parallelism=_parallelism
)
_stored = _hasher.hash_password(os.environ.get("BARE_PASSWORD", "bare-password"))


@app.get("/me")
def me() -> dict[str, object]:
    return {"id": "x", "email": "a@example.com", "roles": ["user"]}


@app.post("/verify")
def verify() -> dict[str, object]:
    body = request.get_json()
    if not _hasher.verify_password(str(body["password"]), _stored).ok:
        abort(401)
    return {"id": "x", "email": str(body["login"]), "roles": ["user"]}


# POST /login: the floor ---------------------------------------------------------------------

_DB = os.environ.get("BARE_DB")
_LOGIN = os.environ.get("BARE_LOGIN", "bare@example.com")
_KEY = Ed25519PrivateKey.generate()
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, roles TEXT NOT NULL,
    last_login_at REAL);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, user_agent TEXT, ip TEXT);
CREATE TABLE IF NOT EXISTS refresh_tokens (token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL, created_at REAL NOT NULL);
"""
_local = threading.local()


def _connect() -> sqlite3.Connection:
    assert _DB is not None
    conn = sqlite3.connect(_DB, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _db() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect()
    return conn


if _DB is not None:  # every worker imports this; the first one creates the user
    with _connect() as _setup:
        _setup.executescript(_SCHEMA)
        _setup.execute(
            "INSERT OR IGNORE INTO users VALUES ('u1', ?, ?, ?, '[\"user\"]', NULL)",
            (_LOGIN, _LOGIN.casefold(), _stored),
        )
    _setup.close()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@app.post("/login")
def login() -> Response:
    if _DB is None:
        abort(404)
    body = request.get_json()
    conn = _db()
    row = conn.execute(
        "SELECT id, email, password_hash, roles FROM users WHERE email_key = ?",
        (str(body["login"]).casefold(),),
    ).fetchone()
    if row is None or not _hasher.verify_password(str(body["password"]), row[2]).ok:
        abort(401)
    now = time.time()
    session_id, refresh = secrets.token_urlsafe(18), "agr_" + secrets.token_urlsafe(32)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (now, row[0]))
    conn.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, row[0], now, now + 30 * 86400, request.user_agent.string, request.remote_addr),
    )
    conn.execute(
        "INSERT INTO refresh_tokens VALUES (?, ?, ?)",
        (hashlib.sha256(refresh.encode()).hexdigest(), session_id, now),
    )
    conn.execute("COMMIT")
    roles = json.loads(row[3])
    claims = {"iss": request.host_url, "aud": "bare", "sub": row[0], "sid": session_id,
              "roles": roles, "iat": int(now), "exp": int(now) + 900,
              "jti": secrets.token_urlsafe(16)}  # fmt: skip
    signing_input = (
        _b64(json.dumps({"alg": "EdDSA", "kid": "bare", "typ": "at+jwt"}).encode())
        + b"."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    token = (signing_input + b"." + _b64(_KEY.sign(signing_input))).decode()
    response = jsonify(
        user={"id": row[0], "email": row[1], "roles": roles},
        access_token=token,
        token_type="Bearer",
        expires_in=900,
        refresh_token=refresh,
    )
    response.set_cookie("bare_session", token, secure=True, httponly=True, samesite="Lax")
    response.set_cookie(
        "bare_refresh", refresh, secure=True, httponly=True, samesite="Lax", path="/login"
    )
    return response
