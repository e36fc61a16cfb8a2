"""Users brought in from another app (``authgate users import``): the fields of one source row
checked and normalised into an :class:`ImportedUser`, without I/O.

A row is a mapping of authgate's field names to the source's values (JSON Lines and CSV rows,
or a database row through ``--map field=column``). Only ``email`` is required:

- ``username``: as authgate's usernames (3 to 32 of ``A-Z a-z 0-9 _ . -``, starting with a
  letter or digit);
- ``name``: 1 to 200 characters;
- ``password_hash``: the hash as stored, in a format a login can verify
  (:data:`~authgate.core.passwords.IMPORTED_HASH_FORMATS`); empty means no password (the user
  resets it or logs in with a provider). An unknown format is refused, never guessed;
- ``roles``: a list, or one string separated by commas or spaces; lower-cased; ``user`` is
  always added (the seed apps' ``"Admin"`` becomes ``admin``);
- ``created_at``: ISO 8601 (a time without zone is UTC) or a datetime;
- ``email_verified``: a boolean, ``1``/``0``, ``true``/``false``, ``yes``/``no``;
- ``legacy_id``: the user's id in the old app (legacy API tokens and sessions may name it).

A bad field raises :class:`~authgate.errors.ValidationFailedError` naming it; the caller refuses
the row with its line number. Nothing here prints or returns a password hash.
"""

from __future__ import annotations

import functools
import re
import uuid
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from authgate.core.passwords import FLASK_SECURITY_PREFIX, identify_password_hash
from authgate.errors import ValidationFailedError

__all__ = [
    "IMPORT_FIELDS",
    "ImportLedger",
    "ImportOutcome",
    "ImportedUser",
    "SourceRow",
    "parse_field_map",
    "parse_imported_user",
]

IMPORT_FIELDS = (
    "email",
    "username",
    "name",
    "password_hash",
    "roles",
    "created_at",
    "email_verified",
    "legacy_id",
)
DEFAULT_IMPORT_ROLES = ("user",)
PasswordPrehash = Literal["flask-security"]
# The formats Flask-Security-Too hashes twice by default (its passlib schemes argon2, bcrypt,
# pbkdf2_sha256/512); the Django ones it lists in SECURITY_PASSWORD_SINGLE_HASH.
_FLASK_SECURITY_DOUBLE_HASHED = frozenset({"argon2", "bcrypt", "passlib-pbkdf2"})

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,31}")
_ROLE = re.compile(r"[a-z][a-z0-9_:-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ROLE_SEPARATORS = re.compile(r"[,\s]+")
# RFC 5322's dot-atom in ASCII, up to 64 characters: the local parts email-validator keeps as they
# are (anything else it checks itself).
_DOT_ATOM = re.compile(
    r"(?=.{1,64}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
# A scheme name is shown only when a "$" follows it: an unsalted digest (MD5, SHA-1) or a password
# stored in plain text has none, and is never echoed.
_HASH_SCHEME = re.compile(r"\$?[A-Za-z0-9_:+-]{1,24}(?=\$)")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})
_MAX_EMAIL = 254
_MAX_NAME = 200
_MAX_HASH = 512
_MAX_LEGACY_ID = 255


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of an import source: ``where`` names it in reports ("line 12", "row 7");
    ``fields`` is None when the row could not even be read (``problem`` says why)."""

    where: str
    fields: Mapping[str, object] | None = field(repr=False)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ImportedUser:
    """A checked row. ``None`` means "not given": a new user gets the default, an updated one
    keeps what it has."""

    email: str
    username: str | None = None
    name: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    roles: tuple[str, ...] | None = None
    created_at: datetime | None = None
    email_verified: bool | None = None
    legacy_id: str | None = None

    @property
    def email_key(self) -> str:
        return self.email.casefold()


class ImportOutcome(StrEnum):
    """What the store did (or, in a dry run, would do) with one imported user."""

    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"
    USERNAME_TAKEN = "username_taken"
    LEGACY_ID_TAKEN = "legacy_id_taken"

    @property
    def refusal(self) -> str | None:
        """The reason to report when the row was refused."""
        return _REFUSALS.get(self)


_REFUSALS = {
    ImportOutcome.USERNAME_TAKEN: "username: already another user's",
    ImportOutcome.LEGACY_ID_TAKEN: "legacy_id: already another user's",
}


def parse_field_map(
    text: str, *, fields: Sequence[str] = IMPORT_FIELDS, required: str = "email"
) -> dict[str, str]:
    """``"email=email,password_hash=password"`` as ``{field: source column}``.

    Raises ``ValueError`` naming an unknown field, a field given twice, or a missing
    ``required`` one."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, equals, column = (piece.strip() for piece in item.partition("="))
        if not equals or not name or not column:
            raise ValueError(f"{item!r}: write FIELD=COLUMN.")
        if name not in fields:
            raise ValueError(f"{name!r} is not a field; use {', '.join(fields)}.")
        if name in mapping:
            raise ValueError(f"{name!r} is mapped twice.")
        mapping[name] = column
    if required not in mapping:
        raise ValueError(f"Map the {required} field, e.g. {required}={required}.")
    return mapping


def parse_imported_user(
    fields: Mapping[str, object], *, password_prehash: PasswordPrehash | None = None
) -> ImportedUser:
    """Check and normalise one row; ``ValidationFailedError`` names every bad field.

    ``password_prehash="flask-security"``: the hashes were made by Flask-Security-Too, which
    hashes an HMAC of the password (unless the scheme is in its SECURITY_PASSWORD_SINGLE_HASH):
    its argon2, bcrypt and passlib pbkdf2 hashes are stored marked so (``flask-security$...``)
    and verified with ``AUTHGATE_LEGACY_PASSWORD_HMAC_SALT``."""
    problems: dict[str, str] = {}
    values: dict[str, object] = {}
    for name, parse in _PARSERS.items():
        raw = fields.get(name)
        if raw is None or (isinstance(raw, str) and name != "email" and not raw.strip()):
            if name == "email":
                problems[name] = "missing"
            continue
        try:
            values[name] = parse(raw)
        except ValueError as e:
            problems[name] = str(e)
    if problems:
        raise ValidationFailedError(problems)
    stored = values.get("password_hash")
    if (
        password_prehash is not None  # "flask-security", the one kind
        and isinstance(stored, str)
        and identify_password_hash(stored) in _FLASK_SECURITY_DOUBLE_HASHED
    ):
        values["password_hash"] = FLASK_SECURITY_PREFIX + stored
    return ImportedUser(**values)  # type: ignore[arg-type]


def _text(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError("not a string")
    value = str(raw).strip()
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 (a CSV saved as Latin-1) or a lone surrogate ("\ud800" in
        # JSON): no database column can hold them.
        raise ValueError("not valid UTF-8 (save the file as UTF-8)") from None
    return value


def _email(raw: object) -> str:
    """The address as email-validator normalises it (the same check as registration's).

    email-validator costs ~0.3 ms an address, mostly checking the domain: a plain ASCII local
    part is checked by a pattern here and its domain once per import (cached), which is what a
    million rows need; anything else goes through email-validator whole."""
    value = _text(raw)
    if len(value) > _MAX_EMAIL:
        raise ValueError(f"longer than {_MAX_EMAIL} characters")
    local, at, domain = value.rpartition("@")
    if at and _DOT_ATOM.fullmatch(local):
        return f"{local}@{_checked_domain(domain)}"
    return _validated_email(value)


def _validated_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise ValueError(f"not a valid email address ({e})") from None


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    """The normalised domain, checked by email-validator with a local part known to be fine."""
    return _validated_email(f"a@{domain}").partition("@")[2]


def _username(raw: object) -> str:
    value = _text(raw)
    if not _USERNAME.fullmatch(value):
        raise ValueError(
            "use 3 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


def _name(raw: object) -> str:
    value = _text(raw)
    if len(value) > _MAX_NAME:
        raise ValueError(f"longer than {_MAX_NAME} characters")
    return value


def _password_hash(raw: object) -> str:
    value = _text(raw)
    if len(value) > _MAX_HASH or identify_password_hash(value) is None:
        # Only the scheme name is shown (up to its first "$"), never the salt or digest.
        scheme = _HASH_SCHEME.match(value)
        if scheme is None:
            raise ValueError("not a hash format authgate can verify (no scheme such as '$2b$')")
        raise ValueError(f"not a hash format authgate can verify (it begins {scheme.group()!r})")
    return value


def _roles(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        items: list[object] = [item for item in _ROLE_SEPARATORS.split(raw) if item]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise ValueError("give a list or a string separated by commas")
    roles = list(DEFAULT_IMPORT_ROLES)
    for item in items:
        role = _text(item).lower()
        if not _ROLE.fullmatch(role):
            raise ValueError(
                f"{role!r}: use 1 to 32 lower-case letters, digits, '_', ':' or '-', "
                "starting with a letter"
            )
        roles.append(role)
    return tuple(dict.fromkeys(roles))


def _created_at(raw: object) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    else:
        text = _text(raw)
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00", 1))
        except ValueError:
            raise ValueError("not an ISO 8601 time, e.g. 2024-05-01T12:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _email_verified(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = _text(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, 1/0, yes/no)")


def _legacy_id(raw: object) -> str:
    # FastAPI Users' ids are UUIDs, read from PostgreSQL as uuid.UUID; its JWTs name them as
    # str(id), the same spelling.
    value = _text(str(raw) if isinstance(raw, uuid.UUID) else raw)
    if len(value) > _MAX_LEGACY_ID:
        raise ValueError(f"longer than {_MAX_LEGACY_ID} characters")
    return value


_PARSERS = {
    "email": _email,
    "username": _username,
    "name": _name,
    "password_hash": _password_hash,
    "roles": _roles,
    "created_at": _created_at,
    "email_verified": _email_verified,
    "legacy_id": _legacy_id,
}


# The ledger of a dry run ------------------------------------------------------------------------


def _digest(value: str) -> int:
    """A 64-bit digest of ``value``, never 0 (the empty slot): Python's own string hash, SipHash
    keyed afresh in every process (what keeps a dict safe from chosen collisions), computed once
    per string. In a million keys, two collide with a chance of about 3e-8."""
    return (hash(value) & 0xFFFFFFFFFFFFFFFF) or 1


def _tag(digest: int) -> int:
    """A 32-bit tag of a digest, never 0 ("none")."""
    return (digest & 0xFFFFFFFF) or 1


class _DigestTable:
    """A hash table of 64-bit digests (open addressing, linear probing) in flat arrays: 8 bytes
    a slot, 12 or 16 with a value, a third to two thirds full. A million keys take 12 to 48 MB,
    where a Python ``set`` or ``dict`` of the same ints takes 70 to 150."""

    __slots__ = ("_keys", "_mask", "_size", "_values")

    def __init__(self, *, values: Literal["I", "Q"] | None, capacity: int = 1024) -> None:
        self._mask = capacity - 1
        self._keys = array("Q", bytes(8 * capacity))
        self._values = (
            None if values is None else array(values, bytes(array(values).itemsize * capacity))
        )
        self._size = 0

    def _slot(self, key: int) -> int:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key or found == 0:
                return slot
            slot = (slot + 1) & mask

    def get(self, key: int) -> int | None:
        """The key's value (1 in a table without values), None when absent."""
        slot = self._slot(key)
        if self._keys[slot] == 0:
            return None
        return 1 if self._values is None else self._values[slot]

    def put(self, key: int, value: int = 1) -> None:
        slot = self._slot(key)
        if self._keys[slot] == 0:
            self._keys[slot] = key
            self._size += 1
        if self._values is not None:
            self._values[slot] = value
        if self._size * 3 > (self._mask + 1) * 2:
            self._grow()

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        capacity = (self._mask + 1) * 2
        self._mask = capacity - 1
        self._keys = array("Q", bytes(8 * capacity))
        self._values = (
            None
            if old_values is None
            else array(old_values.typecode, bytes(old_values.itemsize * capacity))
        )
        for index, key in enumerate(old_keys):
            if key:
                slot = self._slot(key)
                self._keys[slot] = key
                if old_values is not None and self._values is not None:
                    self._values[slot] = old_values[index]

    def __len__(self) -> int:
        return self._size


class ImportLedger:
    """What the earlier batches of one dry run would have written, so that a later batch is
    decided as the real run decides it (where the earlier batches are in the database): an
    email created earlier, a username or legacy id taken or let go earlier.

    Nothing readable is kept: emails, usernames and legacy ids (case-folded) as 64-bit digests,
    in flat hash tables a third to two thirds full. Per row: 18 to 36 bytes for its email, 24 to
    48 more for a username, as much again for a legacy id (a million rows with usernames: about
    60 MB, a third of what Python sets and dicts of the same ints take)."""

    __slots__ = ("_emails", "_legacy_ids", "_legacy_owners", "_username_owners")

    def __init__(self) -> None:
        # email -> a 32-bit tag of its username (0: none); username -> its owner's email
        self._emails = _DigestTable(values="I")
        self._username_owners = _DigestTable(values="Q")
        self._legacy_ids = _DigestTable(values="I")  # email -> a tag of its legacy id
        self._legacy_owners = _DigestTable(values="Q")

    @staticmethod
    def email_id(email_key: str) -> int:
        """What :meth:`username_owner` and :meth:`legacy_id_owner` give for ``email_key``."""
        return _digest(email_key)

    def has_email(self, email_key: str) -> bool:
        return self._emails.get(self.email_id(email_key)) is not None

    def add_email(self, email_key: str) -> None:
        self._emails.put(self.email_id(email_key), 0)

    def username_owner(self, username_key: str, db_owner: str | None = None) -> int | None:
        """The email id of who holds ``username_key`` after the earlier batches: ``0`` when its
        holder (an earlier batch's, or ``db_owner``, the database's) changed it; None when no
        earlier batch touched it."""
        return self._owner(self._username_owners, self._emails, username_key, db_owner)

    def set_username(self, email_key: str, username_key: str) -> None:
        self._claim(self._username_owners, self._emails, username_key, email_key)

    def legacy_id_owner(self, legacy_id: str, db_owner: str | None = None) -> int | None:
        return self._owner(self._legacy_owners, self._legacy_ids, legacy_id, db_owner)

    def set_legacy_id(self, email_key: str, legacy_id: str) -> None:
        self._claim(self._legacy_owners, self._legacy_ids, legacy_id, email_key)

    def _owner(
        self,
        owners: _DigestTable,
        holds: _DigestTable,
        value: str,
        db_owner: str | None,
    ) -> int | None:
        key = _digest(value)
        owner = owners.get(key)
        if owner is None:
            if db_owner is None:
                return None
            owner = self.email_id(db_owner)
        held = holds.get(owner)
        if held is None:  # the database's owner, untouched by the earlier batches
            return None
        return owner if held == _tag(key) else 0

    def _claim(self, owners: _DigestTable, holds: _DigestTable, value: str, email_key: str) -> None:
        key, owner = _digest(value), self.email_id(email_key)
        owners.put(key, owner)
        holds.put(owner, _tag(key))

    def __len__(self) -> int:
        return len(self._emails)
