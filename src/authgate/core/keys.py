"""Ed25519 signing keys for access tokens, kept as PEM files in one directory, with rotation.

Each key lives in ``<directory>/<kid>.pem`` (PKCS8, unencrypted, mode 0600; the directory is 0700).
The kid encodes everything else we need to know about a key, so there is no metadata file to keep
in sync::

    [dev-]YYYYmmddTHHMMSSffffffZ-<8 hex>
    e.g. 20300101T000000000000Z-1a2b3c4d, dev-20300101T000000000000Z-5e6f7a8b

The timestamp makes kids sort by creation time; the ``dev-`` prefix marks keys generated
automatically in dev mode, so production mode can refuse them. Rotating means generating a new key:
it becomes active (newest ``created_at``) while older keys keep verifying the tokens they signed
until an operator removes their files.

Keys kept in the database (``AUTHGATE_SIGNING_KEYS=database``) carry a time they start signing at
(``activates_at``): ``schedule_keys`` says which of them sign, which verify, and when that changes.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from authgate.errors import ConfigError

__all__ = [
    "ALGORITHM",
    "JWKS_MAX_AGE_SECONDS",
    "KeyRing",
    "KeySchedule",
    "ScheduledKey",
    "SigningKey",
    "generate_key",
    "insecure_key_files",
    "load_keyring",
    "new_signing_key",
    "private_key_from_raw",
    "raw_private_key",
    "schedule_keys",
]

ALGORITHM = "EdDSA"
# How long a client may cache /.well-known/jwks.json (its ``Cache-Control: max-age``): a new key
# must be published this long before it signs, or a client holding the previous document meets a
# kid it does not know.
JWKS_MAX_AGE_SECONDS = 300

_DEV_PREFIX = "dev-"
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_KID_RE = re.compile(r"(?P<dev>dev-)?(?P<ts>\d{8}T\d{12}Z)-[0-9a-f]{8}")
_KEY_SUFFIX = ".pem"
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_MAX_KEY_FILE_BYTES = 64 * 1024  # an Ed25519 PKCS8 PEM is ~120 bytes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)
    created_at: datetime  # UTC, microseconds (as encoded in the kid)
    dev: bool  # generated automatically in dev mode

    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK (RFC 8037); never contains the private ``d``."""
        raw = self.private_key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


class KeyRing:
    """An immutable set of signing keys, newest first; the newest one signs, all of them verify."""

    __slots__ = ("_active", "_by_kid", "_keys", "_public")

    def __init__(self, keys: Sequence[SigningKey], *, active: str | None = None) -> None:
        """``active``: the kid of the key that signs (default: the newest)."""
        if not keys:
            raise ValueError("a KeyRing needs at least one key")
        by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise ValueError(f"duplicate key id {key.kid!r}")
            by_kid[key.kid] = key
        self._keys = tuple(sorted(keys, key=lambda k: (k.created_at, k.kid), reverse=True))
        self._by_kid = by_kid
        self._public = {kid: key.private_key.public_key() for kid, key in by_kid.items()}
        if active is not None and active not in by_kid:
            raise ValueError(f"the active key {active!r} is not in the ring")
        self._active = by_kid[active] if active is not None else self._keys[0]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """All keys, newest first."""
        return self._keys

    @property
    def active(self) -> SigningKey:
        """The key that signs new tokens: the one named at construction, else the one with the
        newest ``created_at``."""
        return self._active

    def find(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The key that verifies tokens signed under ``kid``."""
        return self._public.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set to publish at ``/.well-known/jwks.json``: every key's public part."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    def __repr__(self) -> str:
        return f"KeyRing(kids={[k.kid for k in self._keys]!r}, active={self._active.kid!r})"


class PublicKeySet:
    """Verification keys only, from a published JWK Set: what a resource server holds."""

    __slots__ = ("_by_kid",)

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._by_kid = dict(keys)

    @classmethod
    def from_jwks(cls, document: object) -> PublicKeySet:
        """The Ed25519 (``OKP``/``EdDSA``) signing keys of a JWKS document; others are skipped.
        ``ValueError`` if the document is not a JWK Set."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK Set")
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
                continue
            kid, x = jwk.get("kid"), jwk.get("x")
            if not isinstance(kid, str) or not isinstance(x, str):
                continue
            try:
                raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
                keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                continue
        return cls(keys)

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._by_kid.get(kid)

    def __len__(self) -> int:
        return len(self._by_kid)


def _parse_kid(kid: str) -> tuple[datetime, bool] | None:
    """``(created_at, dev)`` encoded in a kid, or None if ``kid`` is not one of ours."""
    match = _KID_RE.fullmatch(kid)
    if match is None:
        return None
    try:
        created_at = datetime.strptime(match["ts"], _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # shaped like a timestamp but not a date, e.g. month 13
        return None
    return created_at, match["dev"] is not None


def _new_kid(*, dev: bool, created_at: datetime) -> str:
    prefix = _DEV_PREFIX if dev else ""
    return f"{prefix}{created_at.strftime(_TIMESTAMP_FORMAT)}-{secrets.token_hex(4)}"


def new_signing_key(*, dev: bool, now: datetime) -> SigningKey:
    """A new Ed25519 key, kept nowhere yet (the database's keys are stored sealed)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    created_at = now.astimezone(UTC)
    return SigningKey(
        kid=_new_kid(dev=dev, created_at=created_at),
        private_key=Ed25519PrivateKey.generate(),
        created_at=created_at,
        dev=dev,
    )


def raw_private_key(key: SigningKey) -> bytes:
    """The 32 bytes of the private key (to be sealed, never stored as they are)."""
    return key.private_key.private_bytes(
        encoding=serialization.Encoding.Raw,
        format=serialization.PrivateFormat.Raw,
        encryption_algorithm=serialization.NoEncryption(),
    )


def private_key_from_raw(raw: bytes) -> Ed25519PrivateKey:
    """The key of ``raw_private_key``; ``ValueError`` if ``raw`` is not 32 bytes."""
    return Ed25519PrivateKey.from_private_bytes(raw)


@dataclass(frozen=True, slots=True)
class ScheduledKey:
    """A key of the database, as far as its schedule goes."""

    kid: str
    created_at: datetime
    activates_at: datetime  # signs from then on, until the next key (by activates_at) does


@dataclass(frozen=True, slots=True)
class KeySchedule:
    """Which keys are in use at one moment."""

    active: str  # signs
    published: tuple[str, ...]  # in the JWKS and verifying: pending, active, recently retired
    next_change: datetime | None  # when a key next starts signing or leaves the JWKS
    retired: tuple[str, ...]  # superseded longer than the retention ago: no token of theirs lives


def schedule_keys(
    keys: Sequence[ScheduledKey], *, now: datetime, retain: timedelta
) -> KeySchedule | None:
    """The schedule at ``now``: the active key is the last (by ``activates_at``) whose time has
    come; a later one is pending (published, not signing); an earlier one verifies for ``retain``
    (the longest access-token lifetime, with leeway) after the next key started signing, then
    retires. With no key active yet, the first one signs. None without keys."""
    ordered = sorted(keys, key=lambda k: (k.activates_at, k.created_at, k.kid))
    if not ordered:
        return None
    started = [i for i, key in enumerate(ordered) if key.activates_at <= now]
    active = started[-1] if started else 0
    published: list[str] = []
    retired: list[str] = []
    changes: list[datetime] = []
    for i, key in enumerate(ordered):
        if i < active:
            retires_at = ordered[i + 1].activates_at + retain
            if retires_at <= now:
                retired.append(key.kid)
                continue
            changes.append(retires_at)
        elif i > active:
            changes.append(key.activates_at)
        published.append(key.kid)
    return KeySchedule(
        active=ordered[active].kid,
        published=tuple(published),
        next_change=min(changes) if changes else None,
        retired=tuple(retired),
    )


def generate_key(directory: Path, *, dev: bool, now: datetime) -> SigningKey:
    """Create a new Ed25519 key, write it to ``directory`` (0600 file, 0700 directory), return it.

    The key is written to a temporary file created with its final mode (never readable by anyone
    else, not even for a moment), then linked under its ``<kid>.pem`` name: a server reading the
    directory meanwhile sees either no new key or the whole key, never a partial file. An existing
    file is never overwritten.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    created_at = now.astimezone(UTC)
    directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    temporary = _write_private_file(directory, pem)
    try:
        for _attempt in range(3):  # a kid collision needs the same second and 32 random bits
            kid = _new_kid(dev=dev, created_at=created_at)
            try:
                os.link(temporary, directory / f"{kid}{_KEY_SUFFIX}")
            except FileExistsError:
                continue
            return SigningKey(kid=kid, private_key=private_key, created_at=created_at, dev=dev)
    finally:
        temporary.unlink(missing_ok=True)
    raise ConfigError(f"Could not create a new key file in {directory}: the names kept colliding.")


def _write_private_file(directory: Path, data: bytes) -> Path:
    """``data`` in a new file of ``directory`` (mode 0600 from its creation, flushed to disk),
    under a name that is not a key's; the caller links it into place and removes it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    path = directory / f".new-key-{secrets.token_hex(8)}.tmp"
    fd = os.open(path, flags, _FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a truncated file behind
        raise
    return path


def _key_files(directory: Path) -> list[tuple[Path, datetime, bool]]:
    """The key files in ``directory`` (named ``<kid>.pem``), with what their kid says."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise ConfigError(f"The key directory {directory} is not a directory; point it at one.")
    found = []
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(_KEY_SUFFIX):
            continue
        parsed = _parse_kid(path.name.removesuffix(_KEY_SUFFIX))
        if parsed is not None and path.is_file():
            found.append((path, *parsed))
    return found


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    fix = "restore it from a backup, or delete it and generate a new key with `authgate keys`"
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(
            f"Could not read the key file {path.name} in {path.parent} ({e.strerror}); "
            "check that it is readable by the user running authgate."
        ) from e
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"The key file {path.name} is far too large to be a key; {fix}.")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigError(
            f"The key file {path.name} in {path.parent} is not an unencrypted PKCS8 PEM "
            f"private key; {fix}."
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"The key file {path.name} in {path.parent} is not an Ed25519 key "
            f"(authgate signs with {ALGORITHM}); {fix}."
        )
    return key


def load_keyring(directory: Path) -> KeyRing | None:
    """Every key in ``directory``, or None if it holds none (or does not exist).

    Files whose name is not ``<kid>.pem`` are ignored; an unreadable or corrupt key file is a
    ``ConfigError`` rather than a silently smaller key ring.
    """
    keys = [
        SigningKey(
            kid=path.name.removesuffix(_KEY_SUFFIX),
            private_key=_load_private_key(path),
            created_at=created_at,
            dev=dev,
        )
        for path, created_at, dev in _key_files(directory)
    ]
    return KeyRing(keys) if keys else None


def insecure_key_files(directory: Path) -> list[Path]:
    """The key files in ``directory`` that group or others may read or write (mode & 0o066)."""
    return [
        path for path, _created_at, _dev in _key_files(directory) if path.stat().st_mode & 0o066
    ]
