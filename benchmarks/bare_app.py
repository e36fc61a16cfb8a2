"""The framework ceiling: a bare Flask app with one view and no authentication.

``benchmarks/run.py`` serves it under the same gunicorn settings as authgate, so the difference
between ``GET /me`` here and ``GET /api/auth/me`` on authgate is what authgate itself costs.
"""

from __future__ import annotations

from flask import Flask

app = Flask("bare")
app.json.sort_keys = False  # type: ignore[attr-defined]  # as authgate's server does


@app.get("/me")
def me() -> dict[str, object]:
    return {"id": "x", "email": "a@example.com", "roles": ["user"]}
