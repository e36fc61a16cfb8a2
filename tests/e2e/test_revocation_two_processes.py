"""Revocation across processes: two gunicorn servers on one database (and one key folder).

A change made through server A must be refused by server B, which has just answered 200 from its
warm caches for the same token: within 100 ms with Redis pub/sub, within 1 s (the poll interval is
0.25 s) without. Each server runs one worker so that the process answering on B is the one whose
cache was warmed (gunicorn hands sequential connections to the same worker anyway). Runs on
SQLite and on PostgreSQL, with and without Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.e2e.helpers import (
    DEPLOYMENT_IDS,
    DEPLOYMENTS,
    NO_REDIS_BOUND_SECONDS,
    REDIS_BOUND_SECONDS,
    Server,
    ServerGroup,
    error_code,
    login_script,
    redis_url_for,
    register,
    server_group,
    set_cookies,
    time_until_status,
    unique_email,
    warm_up,
)
from tests.helpers import BROWSER, PASSWORD, bearer


@dataclass
class Pair:
    group: ServerGroup
    a: Server
    b: Server
    c: Server  # a third instance that never authenticates a request (see the "fresh" tests)
    redis_url: str | None
    bound: float
    admin_token: str


@pytest.fixture(
    scope="module",
    params=DEPLOYMENTS,
    ids=DEPLOYMENT_IDS,
)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    kind, with_redis = request.param
    redis_url = redis_url_for(with_redis)
    with server_group(kind, tmp_path_factory) as group:
        a, b, c = group.start(count=3, workers=1, redis_url=redis_url)
        admin_email = unique_email("admin")
        admin_id = group.cli(
            "users",
            "create",
            admin_email,
            "--role",
            "admin",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        ).strip()
        body = login_script(a, admin_email)
        assert body["user"]["id"] == admin_id
        assert body["user"]["roles"] == ["user", "admin"]
        yield Pair(
            group,
            a,
            b,
            c,
            redis_url,
            REDIS_BOUND_SECONDS if with_redis else NO_REDIS_BOUND_SECONDS,
            body["access_token"],
        )


def me(server: Server, token: str) -> requests.Response:
    return server.get("/api/auth/me", headers=bearer(token))


def new_user(pair: Pair, label: str) -> tuple[dict[str, Any], str]:
    email = unique_email(label)
    return register(pair.a, email), email


def assert_within(elapsed: float, pair: Pair, what: str) -> None:
    mode = "Redis" if pair.redis_url else "polling"
    assert elapsed < pair.bound, (
        f"{what}: the other process still accepted the old credential {elapsed * 1000:.0f} ms "
        f"after the change returned (bound {pair.bound * 1000:.0f} ms with {mode})"
    )


def test_servers_share_keys_and_database(pair: Pair) -> None:
    assert (
        pair.a.get("/.well-known/jwks.json").json() == pair.b.get("/.well-known/jwks.json").json()
    )
    _, email = new_user(pair, "shared")
    token = login_script(pair.b, email)["access_token"]  # registered on A, logged in on B
    assert me(pair.a, token).status_code == 200
    assert me(pair.b, token).status_code == 200


def test_logout(pair: Pair) -> None:
    _, email = new_user(pair, "logout")
    token = login_script(pair.a, email)["access_token"]
    other = login_script(pair.a, email)["access_token"]  # another session of the same user
    warm_up(lambda: me(pair.b, token))
    warm_up(lambda: me(pair.b, other))

    response = pair.a.post("/api/auth/logout", headers=bearer(token))
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    assert me(pair.a, token).status_code == 401  # the process that logged out: at once
    elapsed = time_until_status(lambda: me(pair.b, token), since=returned, bound=pair.bound)
    assert_within(elapsed, pair, "logout")
    assert error_code(me(pair.b, token)) == "token_revoked"
    assert me(pair.b, other).status_code == 200  # only that session ended


def test_logout_all(pair: Pair) -> None:
    _, email = new_user(pair, "logoutall")
    first = login_script(pair.a, email)["access_token"]
    second = login_script(pair.b, email)["access_token"]
    for token in (first, second):
        warm_up(lambda token=token: me(pair.b, token))  # type: ignore[misc]

    response = pair.a.post("/api/auth/logout-all", headers=bearer(first))
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        lambda: me(pair.b, first), lambda: me(pair.b, second), since=returned, bound=pair.bound
    )
    assert_within(elapsed, pair, "logout-all")
    assert me(pair.a, second).status_code == 401


def test_password_change(pair: Pair) -> None:
    _, email = new_user(pair, "password")
    kept = login_script(pair.a, email)["access_token"]
    stolen = login_script(pair.b, email)
    warm_up(lambda: me(pair.b, kept))
    warm_up(lambda: me(pair.b, stolen["access_token"]))

    new_password = "another horse battery staple 42"
    response = pair.a.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(kept),
    )
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        lambda: me(pair.b, stolen["access_token"]), since=returned, bound=pair.bound
    )
    assert_within(elapsed, pair, "password change")
    # The session that changed the password stays; the others' refresh tokens are dead too.
    assert me(pair.b, kept).status_code == 200
    assert me(pair.a, kept).status_code == 200
    refresh = pair.b.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert refresh.status_code == 401, refresh.text
    old = pair.b.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert old.status_code == 401, old.text
    login_script(pair.b, email, new_password)


def test_admin_disables_a_user(pair: Pair) -> None:
    user, email = new_user(pair, "disabled")
    tokens = login_script(pair.b, email)
    token = tokens["access_token"]
    warm_up(lambda: me(pair.b, token))

    response = pair.a.patch(
        f"/api/users/{user['id']}", json={"status": "disabled"}, headers=bearer(pair.admin_token)
    )
    returned = time.perf_counter()
    assert response.status_code == 200, response.text
    assert response.json()["user"]["status"] == "disabled"

    elapsed = time_until_status(lambda: me(pair.b, token), since=returned, bound=pair.bound)
    assert_within(elapsed, pair, "user disabled")
    assert me(pair.a, token).status_code == 401
    refresh = pair.b.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401, refresh.text
    login = pair.b.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert login.status_code == 401, login.text
    assert error_code(login) == "invalid_credentials"


def test_admin_removes_and_grants_a_role(pair: Pair) -> None:
    user, email = new_user(pair, "demoted")
    pair.group.cli("users", "set-roles", email, "user", "admin")
    token = login_script(pair.a, email)["access_token"]

    def list_users() -> requests.Response:
        return pair.b.get("/api/users", headers=bearer(token))

    warm_up(list_users)
    response = pair.a.patch(
        f"/api/users/{user['id']}", json={"roles": ["user"]}, headers=bearer(pair.admin_token)
    )
    returned = time.perf_counter()
    assert response.status_code == 200, response.text
    assert response.json()["user"]["roles"] == ["user"]

    elapsed = time_until_status(list_users, since=returned, bound=pair.bound, new=403, old=200)
    assert_within(elapsed, pair, "admin role removed")
    assert error_code(list_users()) == "insufficient_role"
    assert me(pair.b, token).json()["user"]["roles"] == ["user"]  # still logged in

    response = pair.a.patch(
        f"/api/users/{user['id']}",
        json={"roles": ["user", "admin"]},
        headers=bearer(pair.admin_token),
    )
    returned = time.perf_counter()
    assert response.status_code == 200, response.text
    elapsed = time_until_status(list_users, since=returned, bound=pair.bound, new=200, old=403)
    assert_within(elapsed, pair, "admin role granted")


def test_refresh_token_reuse(pair: Pair) -> None:
    _, email = new_user(pair, "reuse")
    first = login_script(pair.a, email)
    rotated = pair.a.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    # Its successor used: presenting the first token again is a reuse, not a lost answer
    # retried (the reuse grace window).
    successor = {"refresh_token": rotated.json()["refresh_token"]}
    rotated = pair.a.post("/api/auth/refresh", json=successor)
    assert rotated.status_code == 200, rotated.text
    token = rotated.json()["access_token"]
    warm_up(lambda: me(pair.b, token))

    reuse = pair.a.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    returned = time.perf_counter()
    assert reuse.status_code == 401, reuse.text

    elapsed = time_until_status(lambda: me(pair.b, token), since=returned, bound=pair.bound)
    assert_within(elapsed, pair, "refresh token reuse")


def test_refresh_token_reuse_on_a_fresh_process(pair: Pair) -> None:
    """A process that has not authenticated any request yet must still tell the others."""
    _, email = new_user(pair, "fresh")
    first = login_script(pair.c, email)
    rotated = pair.c.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    # Its successor used: presenting the first token again is a reuse, not a lost answer
    # retried (the reuse grace window).
    successor = {"refresh_token": rotated.json()["refresh_token"]}
    rotated = pair.c.post("/api/auth/refresh", json=successor)
    assert rotated.status_code == 200, rotated.text
    token = rotated.json()["access_token"]
    warm_up(lambda: me(pair.b, token))

    reuse = pair.c.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    returned = time.perf_counter()
    assert reuse.status_code == 401, reuse.text

    elapsed = time_until_status(lambda: me(pair.b, token), since=returned, bound=pair.bound)
    assert_within(elapsed, pair, "refresh token reuse on a fresh process")


def test_cookie_logout_by_refresh_cookie_on_a_fresh_process(pair: Pair) -> None:
    """A browser whose access cookie expired logs out with its refresh cookie alone."""
    _, email = new_user(pair, "freshcookie")
    login = pair.a.post(
        "/api/auth/login", json={"login": email, "password": PASSWORD}, headers=BROWSER
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    refresh = set_cookies(login)["authgate_refresh"]
    warm_up(lambda: me(pair.b, token))

    response = pair.c.post(
        "/api/auth/logout", headers={"Cookie": f"{refresh.name}={refresh.value}", **BROWSER}
    )
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(lambda: me(pair.b, token), since=returned, bound=pair.bound)
    assert_within(elapsed, pair, "logout by refresh cookie on a fresh process")


def test_cli_disable_reaches_running_servers(pair: Pair) -> None:
    """``authgate users disable`` in another process: every server refuses the user's tokens.

    The command line writes the revocation log but does not publish to Redis, so the bound is
    the poll bound even when the servers use Redis.
    """
    _, email = new_user(pair, "clidisabled")
    on_a = login_script(pair.a, email)["access_token"]
    on_b = login_script(pair.b, email)["access_token"]
    warm_up(lambda: me(pair.a, on_a))
    warm_up(lambda: me(pair.b, on_b))

    output = pair.group.cli("users", "disable", email)
    returned = time.perf_counter()
    assert "disabled" in output

    elapsed = time_until_status(
        lambda: me(pair.a, on_a), lambda: me(pair.b, on_b), since=returned, bound=1.0
    )
    assert elapsed < NO_REDIS_BOUND_SECONDS, f"{elapsed * 1000:.0f} ms"
    login = pair.b.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert login.status_code == 401, login.text
