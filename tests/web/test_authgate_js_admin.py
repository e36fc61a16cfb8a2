"""``authgate.js``'s administration functions under Node.js with a scripted ``fetch``: what each
sends and returns. (The pages that use them, in Chromium: tests/e2e/test_admin_console.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_authgate_js import run_client

USER = {"id": "u/1", "email": "ada@example.com", "roles": ["user"]}
SESSION = {"id": "s 1", "device": "Chrome 156 on Linux", "user_agent": "Mozilla/5.0"}
PAGE = {"events": [{"id": "e1", "type": "logout"}], "next_cursor": "c2"}

# (the call, the request it makes as "METHOD path", the JSON body sent, the answer, the result)
CALLS: list[tuple[str, str, Any, Any, Any]] = [
    (
        "auth.adminListUsers({ q: 'ada b', page: 2, perPage: 10 })",
        "GET /api/users",
        None,
        {"users": [USER], "total": 11},
        {"users": [USER], "total": 11},
    ),
    ("auth.adminGetUser('u/1')", "GET /api/users/u%2F1", None, {"user": USER}, USER),
    (
        "auth.adminUpdateUser('u1', { roles: ['user', 'editor'] })",
        "PATCH /api/users/u1",
        {"roles": ["user", "editor"]},
        {"user": USER},
        USER,
    ),
    (
        "auth.adminUpdateUser('u1', { status: 'disabled' })",
        "PATCH /api/users/u1",
        {"status": "disabled"},
        {"user": USER},
        USER,
    ),
    ("auth.adminDeleteUser('u1')", "DELETE /api/users/u1", None, {}, None),
    ("auth.listRoles()", "GET /api/roles", None, {"roles": ["user", "admin"]}, ["user", "admin"]),
    (
        "auth.adminListUserSessions('u1')",
        "GET /api/users/u1/sessions",
        None,
        {"sessions": [SESSION]},
        [SESSION],
    ),
    (
        "auth.adminRevokeUserSession('u1', 's 1')",
        "DELETE /api/users/u1/sessions/s%201",
        None,
        {},
        None,
    ),
    ("auth.adminRevokeAllUserSessions('u1')", "DELETE /api/users/u1/sessions", None, {}, None),
    ("auth.adminGetUserMfa('u1')", "GET /api/users/u1/mfa", None, {"methods": []}, []),
    ("auth.adminRemoveUserMfa('u1')", "DELETE /api/users/u1/mfa", None, {}, None),
    ("auth.adminListUserTokens('u1')", "GET /api/users/u1/tokens", None, {"tokens": []}, []),
    ("auth.adminRevokeUserToken('u1', 't1')", "DELETE /api/users/u1/tokens/t1", None, {}, None),
    (
        "auth.adminListUserIdentities('u1')",
        "GET /api/users/u1/identities",
        None,
        {"identities": []},
        [],
    ),
    (
        "auth.adminUnlinkUserIdentity('u1', 'i1')",
        "DELETE /api/users/u1/identities/i1",
        None,
        {},
        None,
    ),
    ("auth.listAudit()", "GET /api/audit", None, PAGE, PAGE),
    (
        "auth.listAudit({ userId: 'u1', type: 'login.failed', "
        "since: new Date('2026-12-01T00:00:00Z'), until: '', cursor: 'c2', limit: 20 })",
        "GET /api/audit",
        None,
        PAGE,
        PAGE,
    ),
]


@pytest.mark.parametrize(
    ("call", "key", "sent", "answer", "result"), CALLS, ids=[c[0].split("(")[0] for c in CALLS]
)
def test_each_admin_function_sends_its_request_and_returns_its_part_of_the_answer(
    tmp_path: Path, call: str, key: str, sent: Any, answer: Any, result: Any
) -> None:
    out = run_client(tmp_path, f"return await {call};", {key: {"status": 200, "body": answer}})

    assert out["error"] is None, out["error"]
    assert out["result"] == result
    (request,) = out["calls"]
    assert request["key"] == key
    assert request["credentials"] == "include"
    if sent is None:
        assert request["body"] in (None, "")
    else:
        assert request["contentType"] == "application/json"
        assert json.loads(request["body"]) == sent


def test_the_last_admin_refusal_is_an_http_error_with_its_code(tmp_path: Path) -> None:
    refused = {
        "status": 409,
        "body": {"error": {"code": "last_admin", "message": "This is the last active admin."}},
    }
    out = run_client(
        tmp_path,
        "return auth.adminUpdateUser('u1', { roles: ['user'] });",
        {"PATCH /api/users/u1": refused},
    )
    assert out["error"]["code"] == "last_admin" and out["error"]["status"] == 409


# What the query strings hold: ``fetch`` wrapped to see each request's URL.
QUERIES = """
const seen = [];
const fetched = globalThis.fetch;
globalThis.fetch = (request, options) => {
  seen.push(new URL(request.url).search);
  return fetched(request, options);
};
await auth.adminListUsers({ q: 'ada b', page: 2, perPage: 10 });
await auth.listAudit({ userId: 'u1', type: 'login.failed', since: new Date('2026-12-01T00:00:00Z'),
                       until: '', cursor: 'c2', limit: 20 });
await auth.listAudit({});
return seen;
"""


def test_the_filters_go_in_the_query_string_and_empty_ones_stay_out(tmp_path: Path) -> None:
    out = run_client(
        tmp_path,
        QUERIES,
        {
            "GET /api/users": {"status": 200, "body": {"users": []}},
            "GET /api/audit": {"status": 200, "body": PAGE},
        },
    )
    assert out["error"] is None, out["error"]
    assert out["result"] == [
        "?page=2&per_page=10&q=ada+b",
        "?user_id=u1&type=login.failed&since=2026-12-01T00%3A00%3A00.000Z&cursor=c2&limit=20",
        "",
    ]
