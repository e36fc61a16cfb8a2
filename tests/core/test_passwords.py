from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import bcrypt
import pytest
from werkzeug.security import (
    DEFAULT_PBKDF2_ITERATIONS,
    _hash_internal,
    check_password_hash,
    generate_password_hash,
)

from authgate.core.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordCheck,
    PasswordHasher,
    _common_passwords,
    _werkzeug_hexdigest,
    find_password_problem,
    is_common_password,
)
from tests.helpers import PASSWORD

T = TypeVar("T")
UNCOMMON = "vq7#Lp2!"  # exactly 8 characters, not in the list

TOO_SHORT = "Use at least 8 characters."
TOO_LONG = "Use at most 1024 characters."
TOO_COMMON = "This password is too common; choose one that is harder to guess."
SAME_AS_IDENTITY = "Do not use your email or username as your password."


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module")
def argon2_hash(hasher: PasswordHasher) -> str:
    return hasher.hash_password(PASSWORD)


# --- hashing and verifying argon2id ---------------------------------------------------------


def test_hash_is_self_describing_argon2id_with_owasp_defaults(argon2_hash: str) -> None:
    assert argon2_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hash_uses_a_fresh_salt(hasher: PasswordHasher, argon2_hash: str) -> None:
    assert hasher.hash_password(PASSWORD) != argon2_hash


def test_right_password_verifies_without_rehash(hasher: PasswordHasher, argon2_hash: str) -> None:
    assert hasher.verify_password(PASSWORD, argon2_hash) == PasswordCheck(True, False)


def test_wrong_password_does_not_verify(hasher: PasswordHasher, argon2_hash: str) -> None:
    assert hasher.verify_password(PASSWORD + "!", argon2_hash) == PasswordCheck(False, False)
    assert hasher.verify_password("", argon2_hash) == PasswordCheck(False, False)


def test_non_ascii_password_round_trips(hasher: PasswordHasher) -> None:
    stored = hasher.hash_password("pässwörd-ünïcode-🔑")
    assert hasher.verify_password("pässwörd-ünïcode-🔑", stored).ok
    assert not hasher.verify_password("passwörd-ünïcode-🔑", stored).ok


def test_changed_parameters_ask_for_rehash(argon2_hash: str) -> None:
    stronger = PasswordHasher(time_cost=3)
    check = stronger.verify_password(PASSWORD, argon2_hash)
    assert check == PasswordCheck(ok=True, needs_rehash=True)
    assert stronger.hash_password(PASSWORD).startswith("$argon2id$v=19$m=19456,t=3,p=1$")


def test_wrong_password_never_asks_for_rehash(argon2_hash: str) -> None:
    check = PasswordHasher(time_cost=3).verify_password("wrong", argon2_hash)
    assert check == PasswordCheck(ok=False, needs_rehash=False)


@pytest.mark.parametrize("argon2_type", ["I", "D"])
def test_other_argon2_types_verify_and_ask_for_rehash(
    hasher: PasswordHasher, argon2_type: str
) -> None:
    import argon2

    other = argon2.PasswordHasher(memory_cost=19456, type=argon2.Type[argon2_type])
    stored = other.hash(PASSWORD)
    assert stored.startswith(f"$argon2{argon2_type.lower()}$")
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert hasher.verify_password("wrong", stored) == PasswordCheck(False, False)


# --- imported hashes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "prefix"),
    [
        ("pbkdf2:sha256:600000", "pbkdf2:sha256:600000$"),
        ("pbkdf2:sha256", "pbkdf2:sha256:"),
        ("scrypt:32768:8:1", "scrypt:32768:8:1$"),
    ],
)
def test_werkzeug_hashes_verify_and_ask_for_rehash(
    hasher: PasswordHasher, method: str, prefix: str
) -> None:
    stored = generate_password_hash(PASSWORD, method=method)
    assert stored.startswith(prefix)
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert hasher.verify_password("wrong", stored) == PasswordCheck(False, False)


# --- werkzeug hashes, verified without werkzeug -----------------------------------------------

WERKZEUG_SALT = "aB3dE5gH7jK9mN1p"
# werkzeug 3.1's DEFAULT_PBKDF2_ITERATIONS, used for "pbkdf2:<digest>" without an iteration count.
WERKZEUG_DEFAULT_ITERATIONS = 1_000_000


def werkzeug_verdict(stored_hash: str, password: str = PASSWORD) -> bool:
    """werkzeug's own check_password_hash, with the exceptions it raises counted as a mismatch."""
    try:
        return check_password_hash(stored_hash, password)
    except (ValueError, OverflowError, TypeError):
        return False


@pytest.mark.parametrize(
    "method",
    [
        "pbkdf2:sha256:1000",
        "pbkdf2:sha512:1000",
        "pbkdf2:sha1:1000",
        "pbkdf2:sha256:1",
        "pbkdf2:sha256:4321",
        "scrypt:256:1:1",
        "scrypt:1024:8:1",
        "scrypt:2048:4:2",
    ],
)
@pytest.mark.parametrize("password", [PASSWORD, "pässwörd-ünïcode-🔑", ""])
def test_werkzeug_generated_hashes_verify_without_werkzeug(
    hasher: PasswordHasher, method: str, password: str
) -> None:
    stored = generate_password_hash(password, method=method)
    assert stored.startswith(method + "$")
    assert hasher.verify_password(password, stored) == PasswordCheck(True, True)
    assert hasher.verify_password(password + "x", stored) == PasswordCheck(False, False)
    assert hasher.verify_password(password.upper() + "X", stored) == PasswordCheck(False, False)


@pytest.mark.parametrize(
    ("method", "other_methods"),
    [
        ("pbkdf2:sha256:1000", ["pbkdf2:sha256:1001", "pbkdf2:sha256:999", "pbkdf2:sha512:1000"]),
        ("scrypt:1024:8:1", ["scrypt:2048:8:1", "scrypt:1024:4:1", "scrypt:1024:8:2"]),
    ],
)
def test_every_part_of_a_werkzeug_hash_counts(
    hasher: PasswordHasher, method: str, other_methods: list[str]
) -> None:
    stored = generate_password_hash(PASSWORD, method=method)
    _method, salt, digest = stored.split("$")
    flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    tampered = (
        [f"{other}${salt}${digest}" for other in other_methods]
        + [
            f"{method}${salt}x${digest}",  # another salt
            f"{method}${salt[:-1]}${digest}",
            f"{method}${salt}${flipped}",
            f"{method}${salt}${digest[:-2]}",  # truncated digest
            f"{method}${salt}${digest}00",
            f"{method}${salt}${digest.upper()}",  # werkzeug compares the lowercase hex exactly
            f"{method}${salt}${digest} ",
            f"{method}${salt}${digest}$",
        ]
    )
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    for bad in tampered:
        assert not werkzeug_verdict(bad), bad
        assert hasher.verify_password(PASSWORD, bad) == PasswordCheck(False, False), bad


@pytest.fixture(scope="module")
def default_iterations_digest() -> str:
    return hashlib.pbkdf2_hmac(
        "sha256", PASSWORD.encode(), WERKZEUG_SALT.encode(), WERKZEUG_DEFAULT_ITERATIONS
    ).hex()


def test_werkzeug_default_iterations_are_the_ones_mirrored() -> None:
    # If this fails after a werkzeug upgrade, passwords.py must follow its new default.
    assert DEFAULT_PBKDF2_ITERATIONS == WERKZEUG_DEFAULT_ITERATIONS


def test_pbkdf2_without_iterations_uses_werkzeugs_default(
    hasher: PasswordHasher, default_iterations_digest: str
) -> None:
    stored = f"pbkdf2:sha256${WERKZEUG_SALT}${default_iterations_digest}"
    assert check_password_hash(stored, PASSWORD)
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert hasher.verify_password("wrong", stored) == PasswordCheck(False, False)
    # The same digest under an explicit count that is not the default does not match.
    explicit = f"pbkdf2:sha256:600000${WERKZEUG_SALT}${default_iterations_digest}"
    assert hasher.verify_password(PASSWORD, explicit) == PasswordCheck(False, False)


def test_pbkdf2_without_iterations_is_not_the_old_600000_default(hasher: PasswordHasher) -> None:
    old_default = hashlib.pbkdf2_hmac(
        "sha256", PASSWORD.encode(), WERKZEUG_SALT.encode(), 600_000
    ).hex()
    stored = f"pbkdf2:sha256${WERKZEUG_SALT}${old_default}"
    assert not check_password_hash(stored, PASSWORD)
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(False, False)


@pytest.mark.parametrize(
    "method",
    ["pbkdf2", "pbkdf2:sha256", "pbkdf2:sha512:1000", "scrypt", "scrypt:1024:8:1"],
)
def test_digest_is_werkzeugs_including_bare_method_defaults(method: str) -> None:
    for password in (PASSWORD, "pässwörd-🔑"):
        expected = _hash_internal(method, WERKZEUG_SALT, password)[0]
        assert _werkzeug_hexdigest(method, WERKZEUG_SALT, password) == expected


@pytest.mark.parametrize("method", ["pbkdf2", "scrypt"])
def test_bare_werkzeug_methods_stay_unrouted(hasher: PasswordHasher, method: str) -> None:
    # Only "pbkdf2:"/"scrypt:" hashes are recognised (werkzeug always writes the parameters).
    digest = _hash_internal(method, WERKZEUG_SALT, PASSWORD)[0]
    stored = f"{method}${WERKZEUG_SALT}${digest}"
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(False, False)


def test_empty_salt_verifies_exactly_as_werkzeug(hasher: PasswordHasher) -> None:
    digest = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), b"", 1000).hex()
    stored = f"pbkdf2:sha256:1000$${digest}"
    assert check_password_hash(stored, PASSWORD)  # werkzeug itself accepts an empty salt
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert hasher.verify_password("wrong", stored) == PasswordCheck(False, False)


@pytest.mark.parametrize(
    "stored_hash",
    [
        "pbkdf2:sha256:1000",
        "pbkdf2:sha256:1000$salt",
        "pbkdf2:sha256:1000$$00",
        "pbkdf2:sha256:1000$$",
        "pbkdf2:sha256:1000$salt$",
        "pbkdf2:sha256:abc$salt$00",
        "pbkdf2:sha256:1.5$salt$00",
        "pbkdf2:sha256:$salt$00",
        "pbkdf2:sha256:-1$salt$00",
        "pbkdf2:sha256:2147483648$salt$00",
        "pbkdf2:sha256:1000:1$salt$00",
        "pbkdf2:nosuchdigest:1000$salt$00",
        "pbkdf2:shake_128:1000$salt$00",
        "pbkdf2:$salt$00",
        "pbkdf2:sha256:1$salt$é",
        "pbkdf2:sha256:1$salt$\ud800",
        "pbkdf2:sha256:1$salt\ud800$00",
        "scrypt:1024:8$salt$00",
        "scrypt:1024:8:1:1$salt$00",
        "scrypt:x:8:1$salt$00",
        "scrypt:$salt$00",
        "scrypt:1000:8:1$salt$00",
        "scrypt:16:8:1$salt$00",
        "scrypt:1024:-8:1$salt$00",
        "scrypt:-1024:8:1$salt$00",
        "scrypt:2097152:8:1$salt$00",
        "scrypt:1024:8:99999999999999999999$salt$00",
        "scrypt:1024:8:1$salt$é",
    ],
)
def test_malformed_werkzeug_hashes_do_not_verify_or_raise(
    hasher: PasswordHasher, stored_hash: str
) -> None:
    assert not werkzeug_verdict(stored_hash)
    assert hasher.verify_password(PASSWORD, stored_hash) == PasswordCheck(False, False)


def test_importing_passwords_does_not_import_werkzeug() -> None:
    code = (
        "import sys, authgate.core.passwords; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'werkzeug'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_hashes_verify_and_ask_for_rehash(hasher: PasswordHasher, prefix: str) -> None:
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    stored = prefix + stored.removeprefix("$2b$")
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert hasher.verify_password("wrong", stored) == PasswordCheck(False, False)


def test_bcrypt_does_not_truncate_long_passwords(hasher: PasswordHasher) -> None:
    first_72 = "a" * 72
    stored = bcrypt.hashpw(first_72.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify_password(first_72, stored).ok
    # bcrypt itself would only look at the first 72 bytes, which match.
    assert hasher.verify_password(first_72 + "b", stored) == PasswordCheck(False, False)
    # 71 ASCII characters plus a two-byte one: 72 characters but 73 bytes.
    assert hasher.verify_password("a" * 71 + "é", stored) == PasswordCheck(False, False)


def test_bcrypt_long_passwords_fail_even_where_bcrypt_truncates(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bcrypt < 5 (allowed by our dependency range) silently compared only the first 72 bytes.
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, hashed: real_checkpw(pw[:72], hashed))
    first_72 = "a" * 72
    stored = bcrypt.hashpw(first_72.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify_password(first_72, stored).ok
    assert hasher.verify_password(first_72 + "b", stored) == PasswordCheck(False, False)


# --- malformed hashes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored_hash",
    [
        "",
        "plain",
        PASSWORD,
        "$argon2id$garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$é",
        "$argon2x$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
        "pbkdf2:sha256",
        "pbkdf2:sha256:notanumber$salt$00",
        "pbkdf2:sha256:0$salt$00",
        "pbkdf2:sha256:99999999999999999999999$salt$00",
        "pbkdf2:md4:1$salt$00",
        "pbkdf2:sha256:1:2$salt$00",
        "pbkdf2:sha256:1$sält\ud800$00",
        "scrypt:abc$salt$00",
        "scrypt:3:8:1$salt$00",
        "scrypt:1073741824:8:1$salt$00",
        "$2b$nonsense",
        "$2b$04$",
        "$2b$04$é",
        "$2x$04$Aq2fTJUk.cspUW0rj5dMy.s5kEYyU8Bg6bGvJU0xcF79RNePLAjEm",
        "$$$",
    ],
)
def test_malformed_hashes_do_not_verify_or_raise(hasher: PasswordHasher, stored_hash: str) -> None:
    assert hasher.verify_password(PASSWORD, stored_hash) == PasswordCheck(False, False)


def test_unencodable_password_does_not_verify_or_raise(
    hasher: PasswordHasher, argon2_hash: str
) -> None:
    lone_surrogate = PASSWORD + "\ud800"
    bcrypt_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    for stored in (argon2_hash, generate_password_hash(PASSWORD), bcrypt_hash):
        assert hasher.verify_password(lone_surrogate, stored) == PasswordCheck(False, False)
    hasher.verify_dummy(lone_surrogate)
    with pytest.raises(UnicodeEncodeError):
        hasher.hash_password(lone_surrogate)


# --- dummy verification ---------------------------------------------------------------------


def test_verify_dummy_runs_a_real_argon2id_verification() -> None:
    hasher = PasswordHasher(time_cost=3)
    hasher.verify_dummy(PASSWORD)
    dummy = hasher.__dict__["_dummy_hash"]
    assert dummy.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    hasher.verify_dummy("another")
    assert hasher.__dict__["_dummy_hash"] is dummy  # made once, then reused


def test_verify_dummy_costs_about_as_much_as_a_real_verification(
    hasher: PasswordHasher, argon2_hash: str
) -> None:
    def fastest(action: Callable[[], object]) -> float:
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            action()
            timings.append(time.perf_counter() - start)
        return min(timings)

    hasher.verify_dummy("warm-up")
    real = fastest(lambda: hasher.verify_password("wrong password", argon2_hash))
    dummy = fastest(lambda: hasher.verify_dummy("wrong password"))
    assert 0.5 < dummy / real < 2.0


# --- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 1},
        {"memory_cost_kib": 19455},
        {"memory_cost_kib": 1024},
        {"parallelism": 0},
    ],
)
def test_parameters_below_owasp_minimum_are_refused(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be at least"):
        PasswordHasher(**params)


def test_parameters_above_minimum_are_accepted() -> None:
    hasher = PasswordHasher(time_cost=2, memory_cost_kib=19456 * 2, parallelism=2)
    stored = hasher.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=38912,t=2,p=2$")
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, False)


# --- policy ---------------------------------------------------------------------------------


def test_length_limits() -> None:
    assert MIN_PASSWORD_LENGTH == 8
    assert MAX_PASSWORD_LENGTH == 1024
    assert find_password_problem("") == TOO_SHORT
    assert find_password_problem(UNCOMMON[:7]) == TOO_SHORT
    assert find_password_problem(UNCOMMON) is None
    long_ok = (UNCOMMON * 128)[:1024]
    assert len(long_ok) == 1024
    assert find_password_problem(long_ok) is None
    assert find_password_problem(long_ok + "x") == TOO_LONG


def test_length_counts_characters_not_bytes() -> None:
    assert find_password_problem("ünïcödé") == TOO_SHORT  # 7 characters, 14 bytes
    assert find_password_problem("ünïcödéß") is None
    assert find_password_problem("é" * 1024) is None  # 2048 bytes


@pytest.mark.parametrize(
    "password", ["password", "123456789", "Password", "PASSWORD", "qwertyuiop"]
)
def test_common_passwords_are_refused(password: str) -> None:
    assert is_common_password(password)
    assert find_password_problem(password) == TOO_COMMON


def test_uncommon_password_is_not_common() -> None:
    assert not is_common_password(UNCOMMON)
    assert not is_common_password(PASSWORD)


def test_common_password_list_is_the_zxcvbn_list() -> None:
    common = _common_passwords()
    assert isinstance(common, frozenset)
    assert len(common) >= 10_000
    assert _common_passwords() is common  # built once


@pytest.mark.parametrize(
    "password",
    ["ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM", "ada.lovelace", "countess1815"],
)
def test_password_equal_to_identity_is_refused(password: str) -> None:
    context = ["Ada.Lovelace@example.com", "Countess1815"]
    assert find_password_problem(password, context=context) == SAME_AS_IDENTITY


def test_identity_check_ignores_empty_context_and_near_misses() -> None:
    assert find_password_problem(UNCOMMON, context=["", "  "]) is None
    assert find_password_problem(UNCOMMON, context=[UNCOMMON + "x", "@" + UNCOMMON[1:]]) is None
    assert find_password_problem(UNCOMMON, context=[UNCOMMON.upper()]) == SAME_AS_IDENTITY


def test_unencodable_password_is_refused() -> None:
    assert find_password_problem(UNCOMMON + "\ud800") is not None


def test_every_hash_and_verification_runs_through_the_offload() -> None:
    """An event-loop worker hands the CPU-bound work to native threads (``bootstrap``)."""
    ran: list[str] = []

    def offload(work: Callable[[], T]) -> T:
        ran.append("work")
        return work()

    hasher = PasswordHasher(offload=offload)
    stored = hasher.hash_password(PASSWORD)
    assert ran == ["work"]
    assert hasher.verify_password(PASSWORD, stored).ok
    assert not hasher.verify_password("wrong password", stored).ok
    imported = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify_password(PASSWORD, imported).ok
    hasher.verify_dummy(PASSWORD)
    assert len(ran) == 5
