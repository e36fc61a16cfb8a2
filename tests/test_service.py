"""Service decisions not visible through a single HTTP call."""

from __future__ import annotations

import bcrypt
from werkzeug.security import generate_password_hash

from authgate.core.keys import generate_key
from authgate.service import AuthService, ClientInfo

PASSWORD = "correct horse battery staple"


def _import_user(service: AuthService, password_hash: str) -> str:
    user = service.store.create_user(
        email="old@example.com",
        username=None,
        name=None,
        password_hash=password_hash,
        roles=["user"],
        now=service.clock.now(),
    )
    return user.id


def test_werkzeug_hash_verifies_and_is_upgraded_to_argon2id(service: AuthService) -> None:
    user_id = _import_user(service, generate_password_hash(PASSWORD, method="pbkdf2:sha256"))
    service.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    service.login("old@example.com", PASSWORD, ClientInfo())


def test_bcrypt_hash_verifies_and_is_upgraded(service: AuthService) -> None:
    user_id = _import_user(service, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    service.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")


def test_argon2_parameter_change_rehashes_at_login(service: AuthService) -> None:
    from authgate.core.passwords import PasswordHasher

    weaker = PasswordHasher(time_cost=2)
    user_id = _import_user(service, weaker.hash_password(PASSWORD))
    service.hasher = PasswordHasher(time_cost=3)
    service.login("old@example.com", PASSWORD, ClientInfo())
    stored = service.store.get_user(user_id)
    assert stored is not None and stored.password_hash is not None
    assert ",t=3," in stored.password_hash


def test_tokens_signed_by_the_previous_key_verify_after_rotation(service: AuthService) -> None:
    service.register(email="k@example.com", password=PASSWORD)
    old = service.login("k@example.com", PASSWORD, ClientInfo())
    new_key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())
    service.keys._last_reload = 0.0
    assert service.keys.reload()
    assert service.keys.ring.active.kid == new_key.kid
    service.cache.clear()
    assert service.authenticate(old.access_token, "bearer").user.email == "k@example.com"
    fresh = service.login("k@example.com", PASSWORD, ClientInfo())
    assert service.authenticate(fresh.access_token, "bearer").claims.key_id == new_key.kid
    assert {k["kid"] for k in service.jwks()["keys"]} >= {new_key.kid, old_kid(old.access_token)}


def old_kid(token: str) -> str:
    import jwt

    return str(jwt.get_unverified_header(token)["kid"])


def test_a_server_learns_a_key_rotated_by_another_process(service: AuthService) -> None:
    """A token signed with a key this process has not loaded yet: reload once, then verify."""
    from authgate.core.tokens import issue_access_token

    service.register(email="k@example.com", password=PASSWORD)
    issued = service.login("k@example.com", PASSWORD, ClientInfo())
    key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())
    token = issue_access_token(
        key=key,
        issuer=service.settings.resolved_issuer,
        audience=service.settings.audience,
        subject=issued.user.id,
        session_id=issued.session.id,
        roles=["user"],
        ttl_seconds=60,
        now=service.clock.timestamp(),
    )
    service.keys._last_reload = 0.0
    assert service.authenticate(token, "bearer").claims.key_id == key.kid


def test_a_rotated_key_is_published_and_used_at_once_by_every_process(
    service: AuthService,
) -> None:
    """`authgate keys rotate` in another process: this one publishes the new key in its JWKS and
    signs with it on its next login, without waiting for a token that names it."""
    service.register(email="r@example.com", password=PASSWORD)
    service.login("r@example.com", PASSWORD, ClientInfo())  # the reload interval has started
    key = generate_key(service.settings.resolved_keys_dir, dev=False, now=service.clock.now())

    published = {k["kid"] for k in service.jwks()["keys"]}
    fresh = service.login("r@example.com", PASSWORD, ClientInfo())

    assert key.kid in published
    assert old_kid(fresh.access_token) == key.kid


class CountingHasher:
    """Wraps the real hasher and records which verification ran."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if name.startswith("verify"):

            def record(*args: object, **kwargs: object) -> object:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return record
        return attr


def test_every_failed_login_costs_one_argon2_verification(service: AuthService) -> None:
    """Unknown, disabled and wrong-password logins all do the same hashing work."""
    from authgate.errors import InvalidCredentialsError
    from authgate.store.records import UserStatus

    service.register(email="on@example.com", password=PASSWORD)
    off = service.register(email="off@example.com", password=PASSWORD)
    service.store.update_access(off.id, status=UserStatus.DISABLED, now=service.clock.now())
    spy = CountingHasher(service.hasher)
    service.hasher = spy  # type: ignore[assignment]
    for login, password in (
        ("nobody@example.com", PASSWORD),
        ("on@example.com", "a wrong password"),
        ("off@example.com", PASSWORD),
    ):
        spy.calls.clear()
        try:
            service.login(login, password, ClientInfo())
        except InvalidCredentialsError:
            pass
        else:
            raise AssertionError(f"{login} logged in")
        assert len(spy.calls) == 1, (login, spy.calls)


def test_an_unusable_key_directory_on_reload_keeps_the_current_keys(
    service: AuthService,
) -> None:
    """A corrupt key file appearing while the server runs must not turn requests into 500s."""
    from authgate.errors import InvalidTokenError

    service.register(email="k@example.com", password=PASSWORD)
    issued = service.login("k@example.com", PASSWORD, ClientInfo())
    (service.settings.resolved_keys_dir / "20991231T000000000000Z-0badc0de.pem").write_text("junk")
    service.keys._last_reload = 0.0
    assert service.keys.reload()
    service.cache.clear()
    assert service.authenticate(issued.access_token, "bearer").user.email == "k@example.com"
    import jwt

    forged_header = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "nope"})
    try:
        service.authenticate(forged_header, "bearer")
    except InvalidTokenError:
        pass
    else:
        raise AssertionError("an unknown kid was accepted")


def test_a_forked_child_does_not_reuse_the_parents_connections(service: AuthService) -> None:
    import os

    assert service.store.ping()
    pid = os.fork()
    if pid == 0:  # the child: a fresh pool, and the database still answers
        ok = service.store.engine.pool.checkedin() == 0 and service.store.ping()  # type: ignore[attr-defined]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert service.store.ping()
