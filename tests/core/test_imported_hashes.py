"""Hashes made by the libraries other apps use, verified at login and named for the importer.

Each hash here is made by the real library (werkzeug, bcrypt, passlib, argon2-cffi, Django's
hashers), never by hand, so a format that drifts from what those libraries write fails here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings

import argon2
import bcrypt
import pytest
from django.conf import settings as django_settings
from werkzeug.security import generate_password_hash

from authgate.core.passwords import (
    FLASK_SECURITY_PREFIX,
    IMPORTED_HASH_FORMATS,
    PasswordCheck,
    PasswordHasher,
    identify_password_hash,
)
from authgate.core.user_imports import parse_imported_user
from tests.helpers import PASSWORD

with warnings.catch_warnings():
    # passlib 1.7.4 imports the stdlib's deprecated "crypt" module at import time.
    warnings.simplefilter("ignore", DeprecationWarning)
    from passlib.hash import pbkdf2_sha1, pbkdf2_sha256, pbkdf2_sha512

if not django_settings.configured:
    django_settings.configure(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
            "django.contrib.auth.hashers.Argon2PasswordHasher",
            "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
            "django.contrib.auth.hashers.BCryptPasswordHasher",
        ]
    )

from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    BCryptPasswordHasher,
    BCryptSHA256PasswordHasher,
    PBKDF2PasswordHasher,
    PBKDF2SHA1PasswordHasher,
)

UNICODE_PASSWORD = "pässwörd-ünïcode-🔑"


class _FastDjangoPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000


class _FastDjangoPBKDF2SHA1(PBKDF2SHA1PasswordHasher):
    iterations = 1000


def _argon2(kind: argon2.Type) -> str:
    return argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=kind).hash(
        PASSWORD
    )


def _bcrypt(prefix: bytes) -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=prefix)).decode()


def _django_bcrypt(hasher: type[BCryptPasswordHasher]) -> str:
    instance = hasher()
    instance.rounds = 4
    return instance.encode(PASSWORD, instance.salt())


# (format, a hash of PASSWORD made by the real library)
MAKERS = {
    "werkzeug pbkdf2": (
        "werkzeug-pbkdf2",
        lambda: generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    ),
    "werkzeug scrypt": (
        "werkzeug-scrypt",
        lambda: generate_password_hash(PASSWORD, method="scrypt:1024:8:1"),
    ),
    "bcrypt 2b": ("bcrypt", lambda: _bcrypt(b"2b")),
    "bcrypt 2a": ("bcrypt", lambda: _bcrypt(b"2a")),
    "bcrypt 2y": ("bcrypt", lambda: _bcrypt(b"2b").replace("$2b$", "$2y$", 1)),
    "argon2id": ("argon2", lambda: _argon2(argon2.Type.ID)),
    "argon2i": ("argon2", lambda: _argon2(argon2.Type.I)),
    "argon2d": ("argon2", lambda: _argon2(argon2.Type.D)),
    "passlib pbkdf2-sha256": (
        "passlib-pbkdf2",
        lambda: pbkdf2_sha256.using(rounds=1000).hash(PASSWORD),
    ),
    "passlib pbkdf2-sha512": (
        "passlib-pbkdf2",
        lambda: pbkdf2_sha512.using(rounds=1000).hash(PASSWORD),
    ),
    "passlib pbkdf2 (sha1)": (
        "passlib-pbkdf2",
        lambda: pbkdf2_sha1.using(rounds=1000).hash(PASSWORD),
    ),
    "django pbkdf2_sha256": (
        "django-pbkdf2",
        lambda: _FastDjangoPBKDF2().encode(PASSWORD, _FastDjangoPBKDF2().salt()),
    ),
    "django pbkdf2_sha1": (
        "django-pbkdf2",
        lambda: _FastDjangoPBKDF2SHA1().encode(PASSWORD, _FastDjangoPBKDF2SHA1().salt()),
    ),
    "django argon2": (
        "django-argon2",
        lambda: Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt()),
    ),
    "django bcrypt_sha256": (
        "django-bcrypt-sha256",
        lambda: _django_bcrypt(BCryptSHA256PasswordHasher),
    ),
    "django bcrypt": ("django-bcrypt", lambda: _django_bcrypt(BCryptPasswordHasher)),
}


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module", params=sorted(MAKERS))
def made(request: pytest.FixtureRequest) -> tuple[str, str]:
    fmt, make = MAKERS[request.param]
    return fmt, make()


def test_every_format_is_covered_here() -> None:
    covered = {fmt for fmt, _make in MAKERS.values()} | {"flask-security"}  # tested below
    assert covered == set(IMPORTED_HASH_FORMATS)


def test_library_hashes_verify_and_ask_for_rehash(
    hasher: PasswordHasher, made: tuple[str, str]
) -> None:
    _fmt, stored = made
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(ok=True, needs_rehash=True)


def test_library_hashes_refuse_a_wrong_password(
    hasher: PasswordHasher, made: tuple[str, str]
) -> None:
    _fmt, stored = made
    for wrong in ("", PASSWORD + "x", PASSWORD.upper(), PASSWORD[:-1]):
        assert hasher.verify_password(wrong, stored) == PasswordCheck(False, False), wrong


def test_library_hashes_are_identified(made: tuple[str, str]) -> None:
    fmt, stored = made
    assert identify_password_hash(stored) == fmt


def test_tampered_library_hashes_do_not_verify(
    hasher: PasswordHasher, made: tuple[str, str]
) -> None:
    _fmt, stored = made
    middle = len(stored) - 10  # inside the digest of every format here
    flipped = stored[:middle] + ("A" if stored[middle] != "A" else "B") + stored[middle + 1 :]
    for bad in (flipped, stored[:-4], stored + "$", stored.replace("$", "$$", 1)):
        assert hasher.verify_password(PASSWORD, bad) == PasswordCheck(False, False), bad


def test_current_argon2id_is_identified_and_needs_no_rehash(hasher: PasswordHasher) -> None:
    stored = hasher.hash_password(PASSWORD)
    assert identify_password_hash(stored) == "argon2"
    assert hasher.verify_password(PASSWORD, stored) == PasswordCheck(True, False)


@pytest.mark.parametrize(
    "password",
    [UNICODE_PASSWORD, "x" * 100],
)
def test_passlib_and_django_agree_on_unusual_passwords(
    hasher: PasswordHasher, password: str
) -> None:
    for stored in (
        pbkdf2_sha512.using(rounds=1000).hash(password),
        _FastDjangoPBKDF2().encode(password, _FastDjangoPBKDF2().salt()),
    ):
        assert hasher.verify_password(password, stored).ok, stored
        assert not hasher.verify_password(password + "x", stored).ok, stored


def test_django_bcrypt_sha256_has_no_72_byte_limit(hasher: PasswordHasher) -> None:
    long_password = "y" * 100
    instance = BCryptSHA256PasswordHasher()
    instance.rounds = 4
    stored = instance.encode(long_password, instance.salt())
    assert hasher.verify_password(long_password, stored).ok
    assert not hasher.verify_password("y" * 99, stored).ok


@pytest.mark.parametrize(
    "stored_hash",
    [
        "",
        "plaintext-password",
        "5f4dcc3b5aa765d61d8327deb882cf99",  # unsalted MD5
        "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",  # Django's MD5
        "sha1$salt$0123456789abcdef0123456789abcdef01234567",
        "{SSHA}abcdefghijklmnop",
        "$1$saltsalt$abcdefghijklmnopqrstuv",  # md5-crypt
        "$6$rounds=5000$salt$abcdef",  # sha512-crypt
        "$argon2id$v=19$m=65536,t=3,p=4$onlysalt",
        "$2b$12$tooshort",
        "$pbkdf2-sha256$notanumber$c2FsdA$c2FsdA",
        "$pbkdf2-sha384$1000$c2FsdA$c2FsdA",
        "pbkdf2_sha256$1000$salt",
        "pbkdf2_sha256$1000$salt$not base64!",
        "pbkdf2:sha256:1000$salt$NOTHEX",
        "scrypt:1024:8$salt$00",
        "bcrypt_sha256$not-bcrypt",
        "pbkdf2_sha256$1000$salté$AAAA",
    ],
)
def test_unknown_or_malformed_hashes_are_not_identified_and_never_verify(
    hasher: PasswordHasher, stored_hash: str
) -> None:
    assert identify_password_hash(stored_hash) is None
    assert hasher.verify_password(PASSWORD, stored_hash) == PasswordCheck(False, False)


@pytest.mark.parametrize(
    "stored_hash",
    [
        "$pbkdf2-sha256$0$c2FsdA$c2FsdA",
        "$pbkdf2-sha256$99999999999$c2FsdA$c2FsdA",
        "pbkdf2_sha256$0$salt$AAAA",
        "pbkdf2_sha256$1$salt$",
        "$pbkdf2-sha256$1000$c2FsdA$c2Fsd",  # bad padding length once decoded
    ],
)
def test_pbkdf2_parameters_out_of_range_do_not_verify_or_raise(
    hasher: PasswordHasher, stored_hash: str
) -> None:
    assert hasher.verify_password(PASSWORD, stored_hash) == PasswordCheck(False, False)


# --- Flask-Security-Too's double hashing --------------------------------------------------------

FS_SALT = "SECURITY_PASSWORD_SALT of the old app"


def flask_security_secret(password: str, salt: str = FS_SALT) -> bytes:
    """Flask-Security-Too's ``utils.get_hmac``: what its passlib scheme hashes (unless the scheme
    is in SECURITY_PASSWORD_SINGLE_HASH): base64(HMAC-SHA512(SECURITY_PASSWORD_SALT, password))."""
    return base64.b64encode(hmac.new(salt.encode(), password.encode(), hashlib.sha512).digest())


FLASK_SECURITY_MAKERS = {
    # Its default scheme since 5.0 (passlib's argon2 handler, argon2-cffi underneath).
    "argon2": lambda secret: argon2.PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1
    ).hash(secret),
    # passlib's bcrypt handler truncates the 88-byte secret to bcrypt's 72.
    "bcrypt": lambda secret: bcrypt.hashpw(secret[:72], bcrypt.gensalt(rounds=4)).decode(),
    "pbkdf2_sha512": lambda secret: pbkdf2_sha512.using(rounds=1000).hash(secret),
}


@pytest.mark.parametrize("scheme", sorted(FLASK_SECURITY_MAKERS))
def test_flask_security_double_hashes_verify_with_its_salt(scheme: str) -> None:
    inner = FLASK_SECURITY_MAKERS[scheme](flask_security_secret(PASSWORD))
    stored = FLASK_SECURITY_PREFIX + inner
    assert identify_password_hash(stored) == "flask-security"
    with_salt = PasswordHasher(prehash_salt=FS_SALT.encode())
    assert with_salt.verify_password(PASSWORD, stored) == PasswordCheck(True, True)
    assert with_salt.verify_password(PASSWORD + "x", stored) == PasswordCheck(False, False)
    # Without the salt, or with another, nothing matches: not the password, not the inner hash.
    assert PasswordHasher().verify_password(PASSWORD, stored) == PasswordCheck(False, False)
    other = PasswordHasher(prehash_salt=b"another salt")
    assert other.verify_password(PASSWORD, stored) == PasswordCheck(False, False)
    # Unmarked, the double hash does not verify with the password itself.
    assert with_salt.verify_password(PASSWORD, inner) == PasswordCheck(False, False)


def test_flask_security_marking_on_import() -> None:
    inner = pbkdf2_sha512.using(rounds=1000).hash(flask_security_secret(PASSWORD))
    marked = parse_imported_user(
        {"email": "ada@example.com", "password_hash": inner}, password_prehash="flask-security"
    )
    assert marked.password_hash == FLASK_SECURITY_PREFIX + inner
    # Django's formats are single-hashed by Flask-Security: left as they are.
    django = _FastDjangoPBKDF2().encode(PASSWORD, _FastDjangoPBKDF2().salt())
    kept = parse_imported_user(
        {"email": "ada@example.com", "password_hash": django}, password_prehash="flask-security"
    )
    assert kept.password_hash == django


@pytest.mark.parametrize("maker", ["passlib pbkdf2-sha256", "django pbkdf2_sha256"])
def test_only_the_canonical_base64_of_a_digest_verifies(hasher: PasswordHasher, maker: str) -> None:
    """32 bytes in base64 leave unused low bits in the last character: setting them spells the
    same bytes differently, which neither passlib's nor Django's own check accepts here."""
    _fmt, make = MAKERS[maker]
    stored = make()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    end = len(stored) - (2 if stored.endswith("=") else 1)
    last = stored[end]
    index = alphabet.index(last if last != "." else "+")
    respelled_char = alphabet[index | 1] if index % 2 == 0 else alphabet[index & ~1]
    respelled = stored[:end] + respelled_char + stored[end + 1 :]
    assert respelled != stored
    assert hasher.verify_password(PASSWORD, stored).ok
    assert hasher.verify_password(PASSWORD, respelled) == PasswordCheck(False, False)
