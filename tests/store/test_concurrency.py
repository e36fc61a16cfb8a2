"""The store under concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from authgate.errors import AuthError, UserExistsError
from authgate.service import AuthService


def test_concurrent_registration_of_one_email_creates_exactly_one_user(
    service: AuthService,
) -> None:
    def attempt(i: int) -> str:
        try:
            service.store.create_user(
                email="same@example.com" if i % 2 else "SAME@example.com",
                username=None,
                name=f"n{i}",
                password_hash="x",
                roles=["user"],
                now=service.clock.now(),
            )
        except UserExistsError:
            return "exists"
        return "created"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(32)))
    assert outcomes.count("created") == 1
    assert outcomes.count("exists") == 31
    assert service.store.count_users() == 1


def test_concurrent_refresh_with_one_token_rotates_once(service: AuthService) -> None:
    from authgate.service import ClientInfo

    service.register(email="r@example.com", password="correct horse battery staple")
    issued = service.login("r@example.com", "correct horse battery staple", ClientInfo())

    def attempt(_: int) -> str:
        try:
            service.refresh(issued.refresh_token)
        except AuthError as e:
            return type(e).__name__
        return "rotated"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("rotated") == 1
    assert set(outcomes) - {"rotated"} <= {"TokenRevokedError", "InvalidTokenError"}
