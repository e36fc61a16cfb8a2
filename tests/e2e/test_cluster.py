"""Three instances, nothing shared but PostgreSQL and Redis, nginx in front (``cluster.py``).

- An instance killed under load (SIGKILL to its master and workers, as when its host dies): no
  idempotent request fails (nginx passes it to the next instance), a refresh in flight on it
  (503) succeeds when the client retries it with the same token, and nobody is logged out.
- A logout on one instance is refused by the two others, asked directly (not through nginx),
  within 100 ms (the revocation feed's Redis bound; tests/e2e/helpers.py).
- Tokens issued by every instance verify on every instance; after a key rotation on one, too.

One cluster for the module: starting it (initdb, three gunicorn masters, nginx) is most of the
time these tests take.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import requests

from tests.e2e.cluster import KEY_PUBLISH_DELAY_SECONDS, Cluster, Instance, running_cluster
from tests.e2e.helpers import (
    REDIS_BOUND_SECONDS,
    error_code,
    time_until_status,
    unique_email,
    warm_up,
)
from tests.helpers import PASSWORD, bearer

LOAD_THREADS = 4  # GET /me, alternately with a bearer token and the session cookie
REFRESH_THREADS = 2  # refresh, then GET /me with the new access token
USERS_PER_THREAD = 3
LOAD_BEFORE_KILL_SECONDS = 1.5
LOAD_AFTER_KILL_SECONDS = 2.5
ACCESS_LINE = re.compile(r'"GET /api/auth/me HTTP/1\.[01]" 200 ')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def client(cluster: Cluster) -> httpx.Client:
    """A keep-alive https client of nginx (the public URL)."""
    return httpx.Client(
        base_url=cluster.public_url,
        verify=ssl.create_default_context(cafile=str(cluster.ca_path)),
        trust_env=False,
        timeout=10,
    )


@dataclass
class Tokens:
    email: str
    access: str
    refresh: str


def new_user(cluster: Cluster, http: httpx.Client, label: str) -> Tokens:
    email = unique_email(label)
    registered = http.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"Origin": cluster.origin, "X-Requested-With": "fetch"},
    )
    assert registered.status_code == 201, registered.text
    return login(http, email)


def login(http: httpx.Client, email: str) -> Tokens:
    response = http.post("/api/auth/login", json={"login": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(email, body["access_token"], body["refresh_token"])


def me(instance: Instance, token: str) -> requests.Response:
    return instance.request("GET", "/api/auth/me", headers=bearer(token))


# Load ------------------------------------------------------------------------------------------


@dataclass
class Load:
    """Threads that keep asking nginx, each on its own keep-alive connection."""

    cluster: Cluster
    readers: list[list[Tokens]]  # one list of users per GET thread
    refreshers: list[list[Tokens]]  # one per refresh thread; tokens replaced as they rotate
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (when, what, status)
    failures: list[str] = field(default_factory=list)
    # A refresh in flight on the killed instance (503: nginx never sends a POST twice), retried
    # at once by the client with the same token; ``cut``: such a retry that failed (logged out).
    retried: list[Tokens] = field(default_factory=list)
    cut: list[Tokens] = field(default_factory=list)
    # (when, what): a response the killed instance had begun to send (its head passed on by
    # nginx, the body never came), which nginx cannot pass to another instance; the client
    # retries the request once, as HTTP clients do an idempotent one.
    truncated: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, http: httpx.Client, what: str, method: str, url: str, **kw: Any) -> Any:
        """The response, retried once after a connection closed mid-response; the error when
        the retry fails too."""
        try:
            return http.request(method, url, **kw)
        except httpx.TransportError:
            with self.lock:
                self.truncated.append((time.perf_counter(), what))
        try:
            return http.request(method, url, **kw)
        except httpx.HTTPError as e:
            return e

    def _record(self, what: str, response: httpx.Response | Exception) -> int:
        status = response.status_code if isinstance(response, httpx.Response) else 0
        with self.lock:
            self.answers.append((time.perf_counter(), what, status))
        return status

    def _read(self, users: list[Tokens]) -> None:
        with client(self.cluster) as http:
            while not self.stop.is_set():
                for user in users:
                    for what, headers in (
                        ("bearer", bearer(user.access)),
                        ("cookie", {"Cookie": f"authgate_session={user.access}"}),
                    ):
                        response = self._send(http, what, "GET", "/api/auth/me", headers=headers)
                        if isinstance(response, Exception):
                            self._record(what, response)
                            self.failures.append(f"GET /me ({what}): {response!r}")
                            continue
                        if self._record(what, response) != 200:
                            self.failures.append(
                                f"GET /me ({what}): {response.status_code} {response.text[:200]}"
                            )

    def _refresh(self, users: list[Tokens]) -> None:
        with client(self.cluster) as http:
            while not self.stop.is_set():
                for user in list(users):
                    # Retried with the same token after a connection closed mid-response: done
                    # or not before the instance died, the rotation must succeed (the grace).
                    response = self._send(
                        http,
                        "refresh",
                        "POST",
                        "/api/auth/refresh",
                        json={"refresh_token": user.refresh},
                    )
                    if isinstance(response, Exception):
                        self._record("refresh", response)
                        self.failures.append(f"refresh: {response!r}")
                        continue
                    status = self._record("refresh", response)
                    if status == 503 and response.json()["error"]["code"] == "service_unavailable":
                        # In flight on the instance that died: nginx never sends a POST twice,
                        # so the client does, with the same token. Done or not before the
                        # instance died, the rotation must succeed now (the reuse grace window:
                        # docs/scaling.md), not log the user out.
                        self.retried.append(user)
                        response = http.post(
                            "/api/auth/refresh", json={"refresh_token": user.refresh}
                        )
                        status = self._record("refresh retried", response)
                        if status != 200:
                            users.remove(user)
                            self.cut.append(user)
                    if status != 200:
                        self.failures.append(f"refresh: {status} {response.text[:200]}")
                        continue
                    body = response.json()
                    user.access, user.refresh = body["access_token"], body["refresh_token"]
                    check = self._send(
                        http, "after refresh", "GET", "/api/auth/me", headers=bearer(user.access)
                    )
                    if isinstance(check, Exception) or self._record("after refresh", check) != 200:
                        self.failures.append(f"GET /me after refresh: {check!r}")

    def run(self, seconds_before: float, action: Any, seconds_after: float) -> float:
        """Run the load, call ``action`` after ``seconds_before``, go on for ``seconds_after``;
        the time ``action`` was called (``perf_counter``)."""
        threads = [threading.Thread(target=self._read, args=(users,)) for users in self.readers]
        threads += [
            threading.Thread(target=self._refresh, args=(users,)) for users in self.refreshers
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(seconds_before)
            at = time.perf_counter()
            action()
            time.sleep(seconds_after)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=30)
        return at


def served_me_requests(instance: Instance) -> int:
    """How many ``GET /api/auth/me`` the instance answered 200 (its access log)."""
    return len(ACCESS_LINE.findall(instance.log_path.read_text(errors="replace")))


# Tests -----------------------------------------------------------------------------------------


def test_the_instances_are_separate_and_share_keys(cluster: Cluster) -> None:
    folders = {instance.folder for instance in cluster.instances}
    assert len(folders) == len(cluster.instances)
    if cluster.network.namespaced:
        # Three network namespaces: three addresses, none of them this host's.
        addresses = {instance.host.address for instance in cluster.instances}
        assert len(addresses) == len(cluster.instances)
        assert cluster.network.shared_address not in addresses
    jwks = [
        instance.request("GET", "/.well-known/jwks.json").json() for instance in cluster.instances
    ]
    assert all(keys == jwks[0] for keys in jwks)
    with client(cluster) as http:
        user = new_user(cluster, http, "everywhere")
    for instance in cluster.instances:
        assert me(instance, user.access).status_code == 200


def test_killing_an_instance_fails_no_request_and_logs_nobody_out(cluster: Cluster) -> None:
    with client(cluster) as http:
        readers = [
            [new_user(cluster, http, "reader") for _ in range(USERS_PER_THREAD)]
            for _ in range(LOAD_THREADS)
        ]
        refreshers = [
            [new_user(cluster, http, "refresher") for _ in range(USERS_PER_THREAD)]
            for _ in range(REFRESH_THREADS)
        ]
    victim, *survivors = cluster.instances
    served_before = served_me_requests(victim)
    load = Load(cluster, readers, refreshers)
    try:
        killed_at = load.run(LOAD_BEFORE_KILL_SECONDS, victim.kill, LOAD_AFTER_KILL_SECONDS)

        # The victim was serving its share before it died, and the load went on after it ...
        assert served_me_requests(victim) > served_before
        with pytest.raises(requests.ConnectionError):
            victim.request("GET", "/healthz", timeout=2)
        # ... and nginx met the dead instance (requests in flight reset, or connections refused),
        # set it aside and passed those requests to the others.
        assert "upstream server temporarily disabled" in cluster.nginx.log()
        after = [status for when, _, status in load.answers if when > killed_at + 0.5]
        assert len(after) > 20, len(after)
        assert load.failures == [], load.failures[:10]
        # A response cut by the kill itself (at most one per connection in flight then) was
        # the only kind of closed connection, and its retry succeeded (no failure above).
        assert len(load.truncated) <= LOAD_THREADS + REFRESH_THREADS, load.truncated
        assert all(killed_at <= when < killed_at + 2 for when, _ in load.truncated), [
            when - killed_at for when, _ in load.truncated
        ]
        print(
            f"kill under load: {len(load.answers)} answers, "
            f"{sum(status == 200 for _, _, status in load.answers)} of them 200, "
            f"{len(after)} after the kill, {len(load.retried)} refresh(es) in flight on it "
            f"retried by the client, {len(load.truncated)} response(s) cut by the kill"
        )
        # Only a refresh in flight on the dead instance is answered 503 by nginx, and the
        # client's retry with the same token is answered as a refresh: no refresh is cut.
        assert len(load.retried) <= REFRESH_THREADS, load.retried
        assert load.cut == [], load.cut

        # Nobody was logged out: every session works on every surviving instance.
        for users in readers:
            for user in users:
                for instance in survivors:
                    assert me(instance, user.access).status_code == 200
        # Every refresher's session goes on too, the retried ones included.
        with client(cluster) as http:
            for users in refreshers:
                for user in users:
                    refreshed = http.post("/api/auth/refresh", json={"refresh_token": user.refresh})
                    assert refreshed.status_code == 200, refreshed.text
    finally:
        victim.start()
        victim.wait_ready()


def test_a_refresh_whose_answer_was_lost_is_retried_on_another_instance(
    cluster: Cluster,
) -> None:
    """What the kill test can only hit by chance, on purpose: one instance rotates the token and
    its answer is lost (dropped here); the client's retry with the same token lands on another
    instance and is answered as a refresh (the reuse grace window), the session intact and the
    lost successor spent."""
    first, second, _ = cluster.instances
    with client(cluster) as http:
        user = new_user(cluster, http, "lost-answer")
    lost = first.request("POST", "/api/auth/refresh", json={"refresh_token": user.refresh})
    assert lost.status_code == 200, lost.text
    retried = second.request("POST", "/api/auth/refresh", json={"refresh_token": user.refresh})
    assert retried.status_code == 200, retried.text
    tokens = retried.json()
    for instance in cluster.instances:
        assert me(instance, tokens["access_token"]).status_code == 200
    following = first.request(
        "POST", "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert following.status_code == 200, following.text
    # The successor of the lost answer is dead: presenting it is a reuse.
    killed = second.request(
        "POST", "/api/auth/refresh", json={"refresh_token": lost.json()["refresh_token"]}
    )
    assert killed.status_code == 401
    assert error_code(killed) == "token_revoked"


def test_a_logout_on_one_instance_is_refused_by_the_others_within_100_ms(
    cluster: Cluster,
) -> None:
    first, *others = cluster.instances
    with client(cluster) as http:
        user = new_user(cluster, http, "logout")
        other_session = login(http, user.email)
    for instance in others:
        warm_up(lambda instance=instance: me(instance, user.access))  # type: ignore[misc]
        warm_up(lambda instance=instance: me(instance, other_session.access))  # type: ignore[misc]

    response = first.request("POST", "/api/auth/logout", headers=bearer(user.access))
    returned = time.perf_counter()
    assert response.status_code == 204, response.text

    elapsed = time_until_status(
        *(lambda instance=instance: me(instance, user.access) for instance in others),
        since=returned,
        bound=REDIS_BOUND_SECONDS,
    )
    assert elapsed < REDIS_BOUND_SECONDS, (
        f"another instance still accepted the logged-out token {elapsed * 1000:.1f} ms after the "
        f"logout returned (bound {REDIS_BOUND_SECONDS * 1000:.0f} ms)"
    )
    print(f"logout refused on the other instances after {elapsed * 1000:.1f} ms")
    for instance in others:
        assert error_code(me(instance, user.access)) == "token_revoked"
        assert me(instance, other_session.access).status_code == 200  # only that session


def kids(instance: Instance) -> set[str]:
    return {key["kid"] for key in instance.request("GET", "/.well-known/jwks.json").json()["keys"]}


def login_on(instance: Instance, email: str) -> str:
    """An access token issued by ``instance`` itself."""
    response = instance.request(
        "POST", "/api/auth/login", json={"login": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def test_a_key_rotated_on_one_host_verifies_everywhere(cluster: Cluster) -> None:
    first = cluster.instances[0]
    with client(cluster) as http:
        email = new_user(cluster, http, "rotation").email
    old_tokens = [login_on(instance, email) for instance in cluster.instances]
    (old_kid,) = {kid_of(token) for token in old_tokens}

    new_kid = first.cli("keys", "rotate").splitlines()[0].strip()  # on the first host only
    returned = time.monotonic()
    assert new_kid and new_kid != old_kid

    # Every instance publishes the new key before any signs with it.
    waiting = set(cluster.instances)
    while waiting:
        for instance in list(waiting):
            if new_kid in kids(instance):
                waiting.discard(instance)
            else:
                assert kid_of(login_on(instance, email)) == old_kid
        assert time.monotonic() - returned < 5, f"not in the JWKS of {waiting}"
        time.sleep(0.05)
    published_after = time.monotonic() - returned

    # Then each instance signs with it ...
    new_tokens = []
    for instance in cluster.instances:
        while kid_of(token := login_on(instance, email)) != new_kid:
            assert time.monotonic() - returned < KEY_PUBLISH_DELAY_SECONDS + 10
            time.sleep(0.1)
        new_tokens.append(token)
    # ... and every token, old key or new, from any instance, verifies on every instance.
    for token in old_tokens + new_tokens:
        for instance in cluster.instances:
            assert me(instance, token).status_code == 200, (kid_of(token), instance.name)
    print(f"new key in every JWKS {published_after * 1000:.0f} ms after `keys rotate` returned")
