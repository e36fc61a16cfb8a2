"""The framework ceilings: a bare Flask app with no authentication.

``benchmarks/run.py`` serves it under the same gunicorn settings as authgate, so

- the difference between ``GET /me`` here and ``GET /api/auth/me`` on authgate is what authgate's
  hot path costs, and
- the difference between ``POST /verify`` here (parse the same JSON login body, one argon2id
  verify with the server's parameters, a small JSON answer) and ``POST /api/auth/login`` is what
  a login costs beyond its hash: user lookup, throttling, the session transaction, token signing
  and cookies.

The argon2id parameters come from ``BARE_ARGON2`` (``time_cost,memory_cost_kib,parallelism``) and
the password from ``BARE_PASSWORD``; the hash is made once at import.
"""

from __future__ import annotations

import os

from flask import Flask, abort, request

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
