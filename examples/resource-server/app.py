"""A separate backend that trusts authgate's access tokens offline: no shared secret, no database.

    AUTHGATE_URL=http://localhost:8086 flask --app examples/resource-server/app.py run --port 5001
    curl localhost:5001/api/notes -H "Authorization: Bearer $ACCESS_TOKEN"

Tokens are verified with the public keys at $AUTHGATE_URL/.well-known/jwks.json. A logout or a
disabled user takes effect here when the access token expires (15 minutes by default).
"""

from __future__ import annotations

import os

from flask import Flask

from authgate import ResourceServer, current_user, token_required

AUTHGATE_URL = os.environ.get("AUTHGATE_URL", "http://localhost:8086").rstrip("/")
# The issuer authgate puts in its tokens: its AUTHGATE_ISSUER, by default its public URL.
ISSUER = os.environ.get("AUTHGATE_ISSUER", AUTHGATE_URL)

app = Flask(__name__)
ResourceServer(app, jwks_url=f"{AUTHGATE_URL}/.well-known/jwks.json", issuer=ISSUER)


@app.get("/api/notes")
@token_required()
def notes() -> dict[str, object]:
    return {"owner": current_user.id, "notes": ["verified offline"]}


@app.delete("/api/notes/<note_id>")
@token_required(roles=["admin"])
def delete_note(note_id: str) -> tuple[str, int]:
    return "", 204
