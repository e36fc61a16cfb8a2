"""Password hashing, verification and the password policy.

New hashes are always argon2id with self-describing parameters
(``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``). Verification also accepts hashes imported from
elsewhere (:data:`IMPORTED_HASH_FORMATS`) -- argon2i/argon2d, werkzeug ``pbkdf2:``/``scrypt:``,
bcrypt ``$2a$``/``$2b$``/``$2y$``, passlib's ``$pbkdf2$``/``$pbkdf2-sha256$``/``$pbkdf2-sha512$``
and Django's ``pbkdf2_sha256$``/``pbkdf2_sha1$``/``argon2$``/``bcrypt_sha256$``/``bcrypt$`` -- and
reports ``needs_rehash`` so the caller can upgrade them to argon2id after a successful login.
Like werkzeug's ``security.py``, a malformed, unknown or empty hash verifies as ``False`` instead
of raising; :func:`identify_password_hash` names the format of a hash (``None`` when unknown or
malformed), so that an importer can refuse what no login could ever verify.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import functools
import hashlib
import hmac
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authgate.errors import ServerBusyError

__all__ = [
    "FLASK_SECURITY_PREFIX",
    "IMPORTED_HASH_FORMATS",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "HashGate",
    "Offload",
    "PasswordCheck",
    "PasswordHasher",
    "find_password_problem",
    "identify_password_hash",
    "is_common_password",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
_MIN_TIME_COST = 2
_MIN_MEMORY_COST_KIB = 19456
_MIN_PARALLELISM = 1

_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
_WERKZEUG_PREFIXES = ("pbkdf2:", "scrypt:")
# werkzeug 3.1's defaults (werkzeug.security), used when a method string leaves them out:
# "pbkdf2" / "pbkdf2:<digest>" and "scrypt" respectively.
_WERKZEUG_PBKDF2_DIGEST = "sha256"
_WERKZEUG_PBKDF2_ITERATIONS = 1_000_000
_WERKZEUG_SCRYPT_N = 2**15
_WERKZEUG_SCRYPT_R = 8
_WERKZEUG_SCRYPT_P = 1
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_BCRYPT_MAX_PASSWORD_BYTES = 72
# passlib's pbkdf2 hashes: "$pbkdf2[-<digest>]$<rounds>$<salt>$<checksum>", salt and checksum in
# its "adapted base64" (``.`` for ``+``, no padding); "$pbkdf2$" is SHA-1.
_PASSLIB_PBKDF2_DIGESTS = {
    "$pbkdf2$": "sha1",
    "$pbkdf2-sha256$": "sha256",
    "$pbkdf2-sha512$": "sha512",
}
# Django's: "pbkdf2_<digest>$<iterations>$<salt>$<base64 digest>"; "argon2$" + an argon2 hash;
# "bcrypt_sha256$" + a bcrypt hash of the password's SHA-256 hex digest; "bcrypt$" + a bcrypt hash.
_DJANGO_PBKDF2_DIGESTS = {"pbkdf2_sha256$": "sha256", "pbkdf2_sha1$": "sha1"}
_DJANGO_ARGON2_PREFIX = "argon2$"
_DJANGO_BCRYPT_SHA256_PREFIX = "bcrypt_sha256$"
_DJANGO_BCRYPT_PREFIX = "bcrypt$"
# Flask-Security-Too hashes the password twice unless told otherwise: its passlib scheme is given
# base64(HMAC-SHA512(SECURITY_PASSWORD_SALT, password)) instead of the password. An importer marks
# such a hash with this prefix (``authgate users import --password-prehash flask-security``); a
# login checks it with the salt (``AUTHGATE_LEGACY_PASSWORD_HMAC_SALT``).
FLASK_SECURITY_PREFIX = "flask-security$"

_B64 = r"[A-Za-z0-9+/]+={0,2}"
_AB64 = r"[A-Za-z0-9./]+"
_ARGON2 = rf"\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+(?:,[^$]*)?\${_B64}\${_B64}"
_BCRYPT = r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"
# The shape of each format a login can verify. A hash matching none of them is refused on import.
_HASH_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("argon2", _ARGON2),
        ("werkzeug-pbkdf2", r"pbkdf2:[a-z0-9_]+(?::\d+)?\$[^$]*\$[0-9a-f]+"),
        ("werkzeug-scrypt", r"scrypt:\d+:\d+:\d+\$[^$]*\$[0-9a-f]+"),
        ("bcrypt", _BCRYPT),
        ("passlib-pbkdf2", rf"\$pbkdf2(?:-sha256|-sha512)?\$\d+\$(?:{_AB64})?\${_AB64}"),
        ("django-pbkdf2", rf"pbkdf2_sha(?:256|1)\$\d+\$[^$]+\${_B64}"),
        ("django-argon2", rf"argon2{_ARGON2}"),
        ("django-bcrypt-sha256", rf"bcrypt_sha256\${_BCRYPT}"),
        ("django-bcrypt", rf"bcrypt\${_BCRYPT}"),
        (
            "flask-security",
            rf"flask-security\$(?:{_ARGON2}|{_BCRYPT}|\$pbkdf2(?:-sha256|-sha512)?\$\d+\$(?:{_AB64})?\${_AB64})",
        ),
    )
)
IMPORTED_HASH_FORMATS = tuple(name for name, _shape in _HASH_SHAPES)

_TOO_SHORT = f"Use at least {MIN_PASSWORD_LENGTH} characters."
_TOO_LONG = f"Use at most {MAX_PASSWORD_LENGTH} characters."
_INVALID_CHARACTERS = "This password contains characters that cannot be used."
_SAME_AS_IDENTITY = "Do not use your email or username as your password."
_TOO_COMMON = "This password is too common; choose one that is harder to guess."


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of :meth:`PasswordHasher.verify_password`.

    ``needs_rehash`` is only ever ``True`` together with ``ok``: the password was right, and the
    stored hash should be replaced by :meth:`PasswordHasher.hash_password` of it.
    """

    ok: bool
    needs_rehash: bool


_MISMATCH = PasswordCheck(ok=False, needs_rehash=False)

T = TypeVar("T")


class Offload(Protocol):
    """Runs ``work`` (a hash: CPU-bound, ~40 ms) and returns its result, possibly on another
    thread: under an event loop (gevent workers) a hash must not stop every other connection."""

    def __call__(self, work: Callable[[], T], /) -> T: ...


def _run_here(work: Callable[[], T]) -> T:
    return work()


class HashGate:
    """At most ``concurrency`` password hashes at once in this process, at most ``queue`` more
    waiting for their turn, none of them longer than ``max_wait_seconds``: past that,
    :class:`~authgate.errors.ServerBusyError` (503, ``retry_after``).

    A login flood then costs each process ``concurrency`` hashes at a time and a quick refusal
    for the rest, instead of a queue of CPU-bound work that starves every other request. Built on
    ``threading``'s semaphore and lock, which gevent's monkey-patching makes cooperative: a
    greenlet waiting for its turn does not stop the worker's other connections.
    """

    def __init__(self, *, concurrency: int, queue: int, max_wait_seconds: float) -> None:
        if concurrency < 1 or queue < 0 or max_wait_seconds < 0:
            raise ValueError("concurrency must be >= 1, queue and max_wait_seconds >= 0.")
        self.concurrency = concurrency
        self.queue = queue
        self.max_wait_seconds = max_wait_seconds
        # What a refusal asks the client to wait: about the time the queue takes to drain.
        self.retry_after_seconds = max(1, math.ceil(max_wait_seconds))
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._running = 0
        self._waiting = 0

    def __repr__(self) -> str:
        return (
            f"HashGate(concurrency={self.concurrency}, queue={self.queue},"
            f" max_wait_seconds={self.max_wait_seconds})"
        )

    @property
    def waiting(self) -> int:
        """How many hashes wait for a turn right now."""
        return self._waiting

    def raise_if_full(self) -> None:
        """Refuse now when every slot is taken and the queue is full: a flood's surplus then
        costs next to nothing. A look, not a reservation: :meth:`admit` may still refuse."""
        if self._running >= self.concurrency and self._waiting >= self.queue:
            raise ServerBusyError(retry_after=self.retry_after_seconds)

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """One turn: at once when a slot is free, else after waiting in the queue."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.queue:
                    raise ServerBusyError(retry_after=self.retry_after_seconds)
                self._waiting += 1
            try:
                admitted = self._slots.acquire(timeout=self.max_wait_seconds)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not admitted:
                raise ServerBusyError(retry_after=self.retry_after_seconds)
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
            self._slots.release()


class PasswordHasher:
    """Hashes passwords with argon2id and verifies argon2, werkzeug and bcrypt hashes.

    The parameters default to the OWASP minimum (m=19 MiB, t=2, p=1); lower values are refused.
    Every hash and verification (the dummy one included) waits for its turn at ``gate`` (by
    default: none), then runs through ``offload`` (by default: right here).
    """

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost_kib: int = 19456,
        parallelism: int = 1,
        offload: Offload | None = None,
        gate: HashGate | None = None,
        prehash_salt: bytes | None = None,
    ) -> None:
        if time_cost < _MIN_TIME_COST:
            raise ValueError(f"time_cost must be at least {_MIN_TIME_COST}, got {time_cost}.")
        if memory_cost_kib < _MIN_MEMORY_COST_KIB:
            raise ValueError(
                f"memory_cost_kib must be at least {_MIN_MEMORY_COST_KIB}, got {memory_cost_kib}."
            )
        if parallelism < _MIN_PARALLELISM:
            raise ValueError(f"parallelism must be at least {_MIN_PARALLELISM}, got {parallelism}.")
        self.time_cost = time_cost
        self.memory_cost_kib = memory_cost_kib
        self.parallelism = parallelism
        self._offload: Offload = offload or _run_here
        self.gate = gate
        # Whether the current thread (greenlet, under gevent) holds this hasher's turn, taken
        # by ``reserve()``.
        self._holding_turn: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "authgate_holding_hash_turn", default=False
        )
        # Flask-Security-Too's SECURITY_PASSWORD_SALT, for its imported hashes (None: they never
        # match).
        self._prehash_salt = prehash_salt
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    def __repr__(self) -> str:
        return (
            f"PasswordHasher(time_cost={self.time_cost}, memory_cost_kib={self.memory_cost_kib},"
            f" parallelism={self.parallelism})"
        )

    def hash_password(self, password: str) -> str:
        """An argon2id hash of ``password`` with a fresh random salt.

        Raises ``ValueError`` (``UnicodeEncodeError``) for a string that is not valid Unicode, such
        as one holding a lone surrogate; :func:`find_password_problem` refuses those first.
        """
        encoded = password.encode("utf-8")
        return self._run(lambda: self._argon2.hash(encoded))

    def verify_password(self, password: str, stored_hash: str) -> PasswordCheck:
        """Whether ``password`` matches ``stored_hash``, and whether that hash should be upgraded.

        Never raises for a bad ``stored_hash``: malformed, unknown and empty hashes do not match.
        """
        return self._run(lambda: self._verify(password, stored_hash))

    def raise_if_busy(self) -> None:
        """``ServerBusyError`` at once when the gate is full (see :meth:`HashGate.raise_if_full`):
        for a caller with work to do before its hash that a refusal would waste."""
        if self.gate is not None and not self._holding_turn.get():
            self.gate.raise_if_full()

    @contextlib.contextmanager
    def reserve(self) -> Iterator[None]:
        """Take a turn at the gate for everything hashed inside the block (``ServerBusyError``
        when there is none): a caller that must not charge anything for a refused hash (the
        login throttle) reserves first, and counts once it holds the turn."""
        if self.gate is None or self._holding_turn.get():
            yield
            return
        with self.gate.admit():
            token = self._holding_turn.set(True)
            try:
                yield
            finally:
                self._holding_turn.reset(token)

    def _run(self, work: Callable[[], T]) -> T:
        if self.gate is None or self._holding_turn.get():
            return self._offload(work)
        with self.gate.admit():
            return self._offload(work)

    def _verify(self, password: str, stored_hash: str) -> PasswordCheck:
        password_bytes = _encode_for_verify(password)
        if stored_hash.startswith(_ARGON2_PREFIXES):
            return self._verify_argon2(password_bytes, stored_hash)
        if stored_hash.startswith(_WERKZEUG_PREFIXES):
            return _verify_werkzeug(password, stored_hash)
        if stored_hash.startswith(_BCRYPT_PREFIXES):
            return _verify_bcrypt(password_bytes, stored_hash)
        return self._verify_other(password_bytes, stored_hash)

    def _verify_other(self, password: bytes, stored_hash: str) -> PasswordCheck:
        """passlib's and Django's formats; each asks for a rehash when it matches."""
        if stored_hash.startswith("$pbkdf2"):
            return _verify_passlib_pbkdf2(password, stored_hash)
        if stored_hash.startswith("pbkdf2_"):
            return _verify_django_pbkdf2(password, stored_hash)
        if stored_hash.startswith(_DJANGO_ARGON2_PREFIX):
            inner = self._verify_argon2(password, stored_hash[len("argon2") :])
            return PasswordCheck(ok=inner.ok, needs_rehash=inner.ok)
        if stored_hash.startswith(_DJANGO_BCRYPT_SHA256_PREFIX):
            prehashed = hashlib.sha256(password).hexdigest().encode("ascii")
            return _verify_bcrypt(prehashed, stored_hash[len(_DJANGO_BCRYPT_SHA256_PREFIX) :])
        if stored_hash.startswith(_DJANGO_BCRYPT_PREFIX):
            return _verify_bcrypt(password, stored_hash[len(_DJANGO_BCRYPT_PREFIX) :])
        if stored_hash.startswith(FLASK_SECURITY_PREFIX) and self._prehash_salt is not None:
            return self._verify_flask_security(password, stored_hash[len(FLASK_SECURITY_PREFIX) :])
        return _MISMATCH

    def _verify_flask_security(self, password: bytes, inner: str) -> PasswordCheck:
        """Flask-Security-Too's double hash: its ``get_hmac`` of the password, then the scheme."""
        assert self._prehash_salt is not None
        digest = hmac.new(self._prehash_salt, password, hashlib.sha512).digest()
        secret = base64.b64encode(digest)  # 88 bytes
        if inner.startswith(_BCRYPT_PREFIXES):
            # passlib's bcrypt, as Flask-Security uses it, truncates the secret to 72 bytes.
            try:
                ok = bcrypt.checkpw(secret[:_BCRYPT_MAX_PASSWORD_BYTES], inner.encode("ascii"))
            except ValueError:
                return _MISMATCH
            return PasswordCheck(ok=ok, needs_rehash=ok)
        if inner.startswith(_ARGON2_PREFIXES):
            check = self._verify_argon2(secret, inner)
        elif inner.startswith("$pbkdf2"):
            check = _verify_passlib_pbkdf2(secret, inner)
        else:
            return _MISMATCH
        return PasswordCheck(ok=check.ok, needs_rehash=check.ok)

    def verify_dummy(self, password: str) -> None:
        """Spend the time of a real argon2id verification, for a user who does not exist.

        The dummy hash is made once per hasher, with the current parameters, from a random secret.
        """
        self._run(lambda: self._verify_dummy(_encode_for_verify(password)))

    def _verify_dummy(self, password: bytes) -> None:
        with contextlib.suppress(VerifyMismatchError):
            self._argon2.verify(self._dummy_hash, password)

    @functools.cached_property
    def _dummy_hash(self) -> str:
        return self._argon2.hash(secrets.token_bytes(32))

    def _verify_argon2(self, password: bytes, stored_hash: str) -> PasswordCheck:
        try:
            self._argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError, ValueError):
            # VerifyMismatchError is a VerificationError; so are decoding and allocation failures.
            return _MISMATCH
        try:
            needs_rehash = self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            needs_rehash = True
        return PasswordCheck(ok=True, needs_rehash=needs_rehash)


def _encode_for_verify(password: str) -> bytes:
    # "surrogatepass" keeps verification total: a lone surrogate becomes bytes that are invalid
    # UTF-8, so no password that hash_password accepted can produce them, and they never match.
    return password.encode("utf-8", errors="surrogatepass")


def _verify_werkzeug(password: str, stored_hash: str) -> PasswordCheck:
    """``werkzeug.security.check_password_hash`` for ``pbkdf2:`` and ``scrypt:`` hashes.

    A hash is ``<method>$<salt>$<hex digest>``; the method and salt come from the stored hash and
    the digest is recomputed exactly as werkzeug's ``_hash_internal`` does.
    """
    try:
        method, salt, hashval = stored_hash.split("$", 2)
    except ValueError:
        return _MISMATCH
    try:
        computed = _werkzeug_hexdigest(method, salt, password)
    except (ValueError, OverflowError, TypeError):
        # Bad parameter counts, non-integer or huge iteration counts, unknown digests, invalid
        # scrypt parameters (ValueError; TypeError when negative) or memory needs above hashlib's
        # 2 GiB maxmem limit, and non-encodable passwords or salts (UnicodeEncodeError).
        return _MISMATCH
    # Compared as bytes: werkzeug compares the strings, which raises TypeError for a non-ASCII
    # stored digest; such a digest can never equal the ASCII hex, so it simply does not match.
    ok = hmac.compare_digest(computed.encode("ascii"), hashval.encode("utf-8", "surrogatepass"))
    return PasswordCheck(ok=ok, needs_rehash=ok)


def _werkzeug_hexdigest(method: str, salt: str, password: str) -> str:
    """The hex digest werkzeug's ``_hash_internal`` computes; raises ``ValueError`` like it."""
    name, *args = method.split(":")
    salt_bytes = salt.encode()
    password_bytes = password.encode()
    if name == "scrypt":
        if args:
            n, r, p = map(int, args)  # ValueError unless exactly three integers
        else:
            # A bare "scrypt" method; verify_password only routes "scrypt:..." hashes here.
            n, r, p = _WERKZEUG_SCRYPT_N, _WERKZEUG_SCRYPT_R, _WERKZEUG_SCRYPT_P
        # werkzeug's own allowance ("ideally 128, but some extra seems needed"). hashlib refuses a
        # maxmem above 2**31 - 1, which bounds the memory an imported hash can demand.
        maxmem = 132 * n * r * p
        return hashlib.scrypt(password_bytes, salt=salt_bytes, n=n, r=r, p=p, maxmem=maxmem).hex()
    if name == "pbkdf2":
        if len(args) == 0:
            # A bare "pbkdf2" method; verify_password only routes "pbkdf2:..." hashes here.
            hash_name, iterations = _WERKZEUG_PBKDF2_DIGEST, _WERKZEUG_PBKDF2_ITERATIONS
        elif len(args) == 1:
            hash_name, iterations = args[0], _WERKZEUG_PBKDF2_ITERATIONS
        elif len(args) == 2:
            hash_name, iterations = args[0], int(args[1])
        else:
            raise ValueError("'pbkdf2' takes 2 arguments.")
        # hashlib refuses unknown digests and iteration counts below 1 or above 2**31 - 1.
        return hashlib.pbkdf2_hmac(hash_name, password_bytes, salt_bytes, iterations).hex()
    raise ValueError(f"Invalid hash method {name!r}.")


def identify_password_hash(stored_hash: str) -> str | None:
    """The format of ``stored_hash`` (one of :data:`IMPORTED_HASH_FORMATS`), or ``None`` when it
    is of no format a login can verify, or malformed: such a hash would never match, and an
    importer refuses it rather than guess."""
    if not isinstance(stored_hash, str) or not stored_hash.isascii():
        return None
    for name, shape in _HASH_SHAPES:
        if shape.fullmatch(stored_hash):
            return name
    return None


def _decode_ab64(value: str) -> bytes:
    """passlib's "adapted base64": standard base64 with ``.`` for ``+`` and no padding. Only the
    canonical spelling of the bytes decodes (``binascii.Error`` otherwise): unused low bits set
    would give one checksum several spellings."""
    standard = value.replace(".", "+")
    decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    if base64.b64encode(decoded).decode("ascii").rstrip("=") != standard:
        raise binascii.Error("non-canonical base64")
    return decoded


def _pbkdf2_matches(
    digest: str, password: bytes, salt: bytes, iterations_text: str, expected: bytes
) -> bool:
    iterations = int(iterations_text)  # ValueError unless an integer
    # hashlib refuses iteration counts below 1 or above 2**31 - 1 (ValueError, OverflowError).
    # The full digest, as passlib and Django write it: a truncated checksum matches nothing.
    computed = hashlib.pbkdf2_hmac(digest, password, salt, iterations)
    return hmac.compare_digest(computed, expected)


def _verify_passlib_pbkdf2(password: bytes, stored_hash: str) -> PasswordCheck:
    """passlib's ``pbkdf2_sha1``/``pbkdf2_sha256``/``pbkdf2_sha512`` (Flask-Security-Too's)."""
    prefix, _, rest = stored_hash[1:].partition("$")
    digest = _PASSLIB_PBKDF2_DIGESTS.get(f"${prefix}$")
    parts = rest.split("$")
    if digest is None or len(parts) != 3:
        return _MISMATCH
    iterations, salt, checksum = parts
    try:
        ok = _pbkdf2_matches(
            digest, password, _decode_ab64(salt), iterations, _decode_ab64(checksum)
        )
    except (ValueError, OverflowError, binascii.Error):
        return _MISMATCH
    return PasswordCheck(ok=ok, needs_rehash=ok)


def _verify_django_pbkdf2(password: bytes, stored_hash: str) -> PasswordCheck:
    """Django's ``PBKDF2PasswordHasher`` and ``PBKDF2SHA1PasswordHasher``."""
    parts = stored_hash.split("$")
    digest = _DJANGO_PBKDF2_DIGESTS.get(parts[0] + "$")
    if digest is None or len(parts) != 4:
        return _MISMATCH
    _algorithm, iterations, salt, encoded = parts
    try:
        expected = base64.b64decode(encoded, validate=True)
        if base64.b64encode(expected).decode("ascii") != encoded:
            return _MISMATCH  # Django compares the base64 text: one spelling only
        ok = _pbkdf2_matches(
            digest, password, salt.encode("utf-8", "surrogatepass"), iterations, expected
        )
    except (ValueError, OverflowError, binascii.Error):
        return _MISMATCH
    return PasswordCheck(ok=ok, needs_rehash=ok)


def _verify_bcrypt(password: bytes, stored_hash: str) -> PasswordCheck:
    if len(password) > _BCRYPT_MAX_PASSWORD_BYTES:
        # bcrypt ignores everything after 72 bytes; a longer password must not match its prefix.
        return _MISMATCH
    try:
        ok = bcrypt.checkpw(password, stored_hash.encode("ascii"))
    except ValueError:
        # "Invalid salt" for malformed hashes; UnicodeEncodeError for non-ASCII ones.
        return _MISMATCH
    return PasswordCheck(ok=ok, needs_rehash=ok)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, casefolded.

    Source: the ``passwords`` list of zxcvbn (``zxcvbn.frequency_lists.FREQUENCY_LISTS``), itself
    drawn from leaked password dumps. Imported on first use because the module is large.
    """
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(str(entry).casefold() for entry in FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """Whether ``password`` is in the common-password list, ignoring case."""
    return password.casefold() in _common_passwords()


def find_password_problem(password: str, *, context: Iterable[str] = ()) -> str | None:
    """A user-facing message saying what is wrong with a new password, or ``None`` if it is fine.

    ``context`` holds values the password must not equal, ignoring case: the user's email and
    username. The local part of any value containing ``@`` is refused as well.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return _TOO_SHORT
    if len(password) > MAX_PASSWORD_LENGTH:
        return _TOO_LONG
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return _INVALID_CHARACTERS
    folded = password.casefold()
    if folded in _identity_values(context):
        return _SAME_AS_IDENTITY
    if is_common_password(password):
        return _TOO_COMMON
    return None


def _identity_values(context: Iterable[str]) -> set[str]:
    values: set[str] = set()
    for value in context:
        folded = value.strip().casefold()
        if not folded:
            continue
        values.add(folded)
        local_part, at, _domain = folded.rpartition("@")
        if at and local_part:
            values.add(local_part)
    return values
