"""``authgate.js``'s account functions under Node.js with a scripted ``fetch``: what each sends
(method, path, JSON body, credentials) and returns, the server's refusal as an ``AuthgateError``,
and ``tokenFromFragment`` taking a mailed link's token out of the address bar. (The pages that use
them, in Chromium against the real server: tests/e2e/test_account_pages.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_authgate_js import run_client

USER = {"id": "u1", "email": "ada@example.com", "email_verified": True}
INVITATION = {"id": "inv1", "email": "bob@example.com", "role": "member"}
PREVIEW = {
    "tenant_name": "Team",
    "email": "bob@example.com",
    "role": "member",
    "inviter_name": "Ada",
}

# (the call, the request it makes as "METHOD path", the JSON body sent, the answer, the result)
CALLS: list[tuple[str, str, Any, Any, Any]] = [
    ("auth.requestEmailVerification()", "POST /api/auth/email/verify/request", None, {}, None),
    (
        "auth.verifyEmail('tok')",
        "POST /api/auth/email/verify",
        {"token": "tok"},
        {"user": USER},
        USER,
    ),
    (
        "auth.resendVerification('ada@example.com', 'pw')",
        "POST /api/auth/email/verify/resend",
        {"email": "ada@example.com", "password": "pw"},
        {},
        None,
    ),
    (
        "auth.forgotPassword('ada@example.com')",
        "POST /api/auth/password/forgot",
        {"email": "ada@example.com"},
        {},
        None,
    ),
    (
        "auth.resetPassword('tok', 'new password')",
        "POST /api/auth/password/reset",
        {"token": "tok", "password": "new password"},
        {},
        None,
    ),
    (
        "auth.changeEmail('new@example.com', 'pw')",
        "POST /api/auth/email/change",
        {"email": "new@example.com", "password": "pw"},
        {},
        None,
    ),
    (
        "auth.confirmEmailChange('tok')",
        "POST /api/auth/email/change/confirm",
        {"token": "tok"},
        {"user": USER},
        USER,
    ),
    (
        "auth.createInvitation('t/1', 'bob@example.com', 'member')",
        "POST /api/tenants/t%2F1/invitations",
        {"email": "bob@example.com", "role": "member"},
        {"invitation": INVITATION},
        INVITATION,
    ),
    (
        "auth.listInvitations('t1')",
        "GET /api/tenants/t1/invitations",
        None,
        {"invitations": [INVITATION]},
        [INVITATION],
    ),
    (
        "auth.revokeInvitation('t1', 'inv 1')",
        "DELETE /api/tenants/t1/invitations/inv%201",
        None,
        {},
        None,
    ),
    (
        "auth.previewInvitation('tok')",
        "POST /api/invitations/preview",
        {"token": "tok"},
        PREVIEW,
        PREVIEW,
    ),
    (
        "auth.register({ email: 'bob@example.com', password: 'pw', invitationToken: 'tok' })",
        "POST /api/auth/register",
        {"email": "bob@example.com", "password": "pw", "invitation_token": "tok"},
        {"user": USER},
        USER,
    ),
    (
        "auth.acceptInvitation('tok')",
        "POST /api/invitations/accept",
        {"token": "tok"},
        {"tenant": {"id": "t1", "name": "Team"}, "role": "member"},
        {"tenant": {"id": "t1", "name": "Team"}, "role": "member"},
    ),
]


@pytest.mark.parametrize(
    ("call", "key", "sent", "answer", "result"), CALLS, ids=[c[0].split("(")[0] for c in CALLS]
)
def test_each_account_function_sends_its_request_and_returns_its_part_of_the_answer(
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


def test_a_refused_token_is_an_http_error_with_the_servers_code(tmp_path: Path) -> None:
    refused = {"status": 400, "body": {"error": {"code": "invalid_token", "message": "Expired."}}}
    out = run_client(
        tmp_path,
        "return auth.resetPassword('old', 'new password');",
        {"POST /api/auth/password/reset": refused},
    )

    assert out["error"] == {
        "name": "AuthgateError",
        "kind": "http",
        "status": 400,
        "code": "invalid_token",
        "message": "Expired.",
    }


def test_a_weak_new_password_comes_back_with_its_field_message(tmp_path: Path) -> None:
    weak = {
        "status": 422,
        "body": {
            "error": {
                "code": "validation_failed",
                "message": "Invalid request.",
                "details": {"fields": {"password": "Use at least 8 characters."}},
            }
        },
    }
    out = run_client(
        tmp_path,
        """
        try { await auth.resetPassword('tok', 'short'); }
        catch (e) { return { status: e.status, fields: e.fields }; }
        """,
        {"POST /api/auth/password/reset": weak},
    )

    assert out["result"] == {"status": 422, "fields": {"password": "Use at least 8 characters."}}


# A page at `PAGE_URL` with a scripted history: replaceState moves `location` as a browser does.
FRAGMENT_PAGE = """
globalThis.location = new URL(PAGE_URL);
const replaced = [];
globalThis.history = { state: { kept: 1 }, replaceState(state, title, url) {
  replaced.push({ state, url: String(url) });
  globalThis.location = new URL(url, globalThis.location.href);
} };
const token = client.tokenFromFragment();
return { token, href: globalThis.location.href, replaced };
"""


@pytest.mark.parametrize(
    ("url", "token", "after"),
    [
        (
            "https://app.example.com/reset-password#token=abc-DEF_123",
            "abc-DEF_123",
            "https://app.example.com/reset-password",
        ),
        (
            "https://app.example.com/invitation?lang=fr#token=abc&tab=2",
            "abc",
            "https://app.example.com/invitation?lang=fr#tab=2",
        ),
    ],
)
def test_token_from_fragment_returns_the_token_and_takes_it_out_of_the_address_bar(
    tmp_path: Path, url: str, token: str, after: str
) -> None:
    out = run_client(tmp_path, FRAGMENT_PAGE.replace("PAGE_URL", json.dumps(url)), {})

    assert out["error"] is None, out["error"]
    assert out["result"]["token"] == token
    assert out["result"]["href"] == after
    assert out["result"]["replaced"] == [{"state": {"kept": 1}, "url": after}]


@pytest.mark.parametrize(
    "url", ["https://app.example.com/reset-password", "https://app.example.com/x#other=1"]
)
def test_without_a_token_in_the_fragment_nothing_changes(tmp_path: Path, url: str) -> None:
    out = run_client(tmp_path, FRAGMENT_PAGE.replace("PAGE_URL", json.dumps(url)), {})

    assert out["result"] == {"token": None, "href": url, "replaced": []}


def test_an_empty_token_is_none_but_still_leaves_the_address_bar(tmp_path: Path) -> None:
    url = "https://app.example.com/verify-email#token="
    out = run_client(tmp_path, FRAGMENT_PAGE.replace("PAGE_URL", json.dumps(url)), {})

    assert out["result"]["token"] is None
    assert out["result"]["href"] == "https://app.example.com/verify-email"


# A provider login that stopped at its second step (docs/mfa.md#after-a-provider-login).
PROVIDER_MFA_PAGE = """
globalThis.location = new URL(PAGE_URL);
globalThis.sessionStorage = { getItem() { return null; }, removeItem() {}, setItem() {} };
globalThis.history = { state: null, replaceState(state, title, url) {
  globalThis.location = new URL(url, globalThis.location.href);
} };
try {
  await auth.completeProviderLogin();
  return { thrown: null };
} catch (e) {
  return { thrown: { code: e.code, status: e.status, mfa: e.mfa }, href: globalThis.location.href };
}
"""


@pytest.mark.parametrize(
    ("step", "methods"),
    [("mfa_required", ["totp", "passkey", "recovery_code"]), ("mfa_enrollment_required", ["totp"])],
)
def test_complete_provider_login_throws_the_second_step_of_the_fragment(
    tmp_path: Path, step: str, methods: list[str]
) -> None:
    url = (
        "https://app.example.com/?next=%2Faccount#authgate_mfa=tok-123"
        f"&authgate_mfa_step={step}&authgate_mfa_methods={'%2C'.join(methods)}"
    )
    out = run_client(tmp_path, PROVIDER_MFA_PAGE.replace("PAGE_URL", json.dumps(url)), {})

    assert out["error"] is None, out["error"]
    assert out["result"]["thrown"] == {
        "code": step,
        "status": 401,
        "mfa": {"token": "tok-123", "methods": methods},
    }
    assert out["result"]["href"] == "https://app.example.com/?next=%2Faccount"  # token gone
    assert out["calls"] == []  # nothing to exchange: the browser holds the binding cookie
