"""The signing keys the service issues access tokens with — from their directory
(``KeySource``) or from the database (``DatabaseKeySource``) — and the key-encryption key that
seals secrets stored in the database (``load_secret_box``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from authgate.config import Settings
from authgate.core.audit import KEY_ROTATED, AuditContext, new_event
from authgate.core.clocks import Clock
from authgate.core.keys import (
    KeyRing,
    KeySchedule,
    ScheduledKey,
    SigningKey,
    generate_key,
    insecure_key_files,
    load_keyring,
    new_signing_key,
    private_key_from_raw,
    raw_private_key,
    schedule_keys,
)
from authgate.core.secret_boxes import (
    SecretBox,
    SecretBoxError,
    generate_key_file,
    parse_key_encryption_key,
)
from authgate.errors import ConfigError, StoreUnavailableError
from authgate.store.protocols import SigningKeyStore
from authgate.store.records import (
    FIRST_SIGNING_KEY,
    RevocationKind,
    SigningKeyRecord,
    signing_key_context,
)

if TYPE_CHECKING:
    from authgate.backends.revocation_feed import RevocationFeed

log = logging.getLogger("authgate")

_KEY_RELOAD_INTERVAL_SECONDS = 10.0
# A file system may stamp changes with a coarse clock (a few ms): a directory changed again within
# the tick it was read in keeps its mtime. While the mtime read is this recent, compare listings.
_RACY_MTIME_NS = 1_000_000_000
# A retired key verifies this long past the longest access-token lifetime: clocks of the
# instances (and of resource servers, whose leeway is 30 s) differ a little.
RETIREMENT_LEEWAY_SECONDS = 60


class SigningKeys(Protocol):
    """What the service needs of its signing keys, wherever they live."""

    ring: KeyRing

    def jwks(self) -> dict[str, list[dict[str, str]]]: ...

    def refresh_if_changed(self) -> None:
        """Before signing: pick up what changed, cheaply (never a database query)."""
        ...

    def reload(self) -> bool:
        """A token names an unknown ``kid``: re-read the keys if that may help (rate-limited);
        True when they were re-read."""
        ...

    def follow(self, feed: RevocationFeed) -> None:
        """Keep up with the other processes through the revocation feed (if the keys need it)."""
        ...


class KeySource:
    """The signing keys, re-read from their directory when it changed (checked before signing
    and before answering JWKS) and when a token names an unknown ``kid``."""

    def __init__(self, settings: Settings, clock: Clock):
        self._directory = settings.resolved_keys_dir
        self._production = settings.is_production
        self._clock = clock
        self._last_reload = 0.0
        self._directory_mtime = self._mtime()
        self._key_files = self._listing()
        self._racy = True
        ring = load_keyring(self._directory)
        if ring is None:
            if self._production:
                raise ConfigError(
                    f"No signing key in {self._directory}. Create one with "
                    f"`authgate keys rotate --keys-dir {self._directory}`."
                )
            key = generate_key(self._directory, dev=True, now=clock.now())
            log.warning(
                "Generated a development signing key %s in %s (mode 0600). "
                "Production refuses development keys; run `authgate keys rotate`.",
                key.kid,
                self._directory,
            )
            ring = KeyRing([key])
            self._directory_mtime, self._key_files = self._mtime(), self._listing()  # as read
        self.ring = self._checked(ring)

    def follow(self, feed: RevocationFeed) -> None:
        """Nothing to follow: every process reads the same directory (``refresh_if_changed``)."""

    def _checked(self, ring: KeyRing) -> KeyRing:
        """The ring, if production may sign with it; ``ConfigError`` saying why otherwise."""
        if not self._production:
            return ring
        exposed = insecure_key_files(self._directory)
        if exposed:
            raise ConfigError(
                f"Signing key files are readable by other users: "
                f"{', '.join(str(p) for p in exposed)}. Run `chmod 600` on them."
            )
        if ring.active.dev:
            raise ConfigError(
                f"The active signing key {ring.active.kid} was generated for development. "
                f"Create a production key with `authgate keys rotate --keys-dir {self._directory}`."
            )
        return ring

    def _mtime(self) -> int:
        try:
            return self._directory.stat().st_mtime_ns
        except OSError:
            return 0

    def _listing(self) -> frozenset[str]:
        """The names of the directory's key files (one ``listdir``)."""
        try:
            return frozenset(name for name in os.listdir(self._directory) if name.endswith(".pem"))
        except OSError:
            return frozenset()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every worker publishes a key the moment ``keys rotate`` wrote it (one ``stat``), not
        only the worker that happened to sign with it first."""
        self.refresh_if_changed()
        return self.ring.jwks()

    def refresh_if_changed(self) -> None:
        """Pick up a key added by ``authgate keys rotate`` before signing: one ``stat`` (and a
        ``listdir`` within a second of a change, see ``_RACY_MTIME_NS``)."""
        if self._mtime() != self._directory_mtime:
            self._read()
        elif self._racy:
            if self._listing() != self._key_files:
                self._read()
            elif time.time_ns() - self._directory_mtime > _RACY_MTIME_NS:
                self._racy = False  # any later change gets a later mtime

    def reload(self) -> bool:
        """A token names a ``kid`` this process does not hold: re-read the key directory if that
        can help; True when it was re-read.

        At once when the directory changed since the last read — a key file was added (one
        ``listdir``; this does not depend on the granularity of the directory's mtime) or its
        mtime moved — so a token signed with a key in the directory is never refused, however
        close together rotations come. An unchanged directory (a forged ``kid``) is re-read at
        most every ``_KEY_RELOAD_INTERVAL_SECONDS``."""
        if self._mtime() == self._directory_mtime and self._listing() <= self._key_files:
            now = self._clock.timestamp()
            if now - self._last_reload < _KEY_RELOAD_INTERVAL_SECONDS:
                return False
            self._last_reload = now
        self._read()
        return True

    def _read(self) -> None:
        """Re-read the directory. One that cannot be used now (a key being written, a bad file)
        keeps the keys in use and is logged: a request never fails on it."""
        # Noted before reading: a change made while we read is seen as a change next time.
        self._directory_mtime = self._mtime()
        self._key_files = self._listing()
        self._racy = True
        try:
            ring = load_keyring(self._directory)
            if ring is not None:
                self.ring = self._checked(ring)
        except ConfigError as e:
            log.error("kept the current signing keys: %s", e)


def load_secret_box(settings: Settings) -> SecretBox:
    """The key-encryption key of ``AUTHGATE_KEY_ENCRYPTION_KEY`` (or its ``_FILE``).

    In development without either, the key of ``<instance>/key-encryption-key``, generated
    there (mode 0600) the first time; production refuses to start without one
    (``Settings.production_problems``) and with a key file others may read."""
    if settings.key_encryption_key is not None:
        return SecretBox(parse_key_encryption_key(settings.key_encryption_key.get_secret_value()))
    path = settings.resolved_key_encryption_key_file
    if settings.key_encryption_key_file is None and not path.exists():
        if settings.is_production:
            raise ConfigError("AUTHGATE_KEY_ENCRYPTION_KEY is not set.")
        try:
            generate_key_file(path)
            log.warning(
                "Generated a development key-encryption key in %s (mode 0600). Production "
                "needs AUTHGATE_KEY_ENCRYPTION_KEY or AUTHGATE_KEY_ENCRYPTION_KEY_FILE.",
                path,
            )
        except FileExistsError:
            pass  # another process wrote it first: read it
    try:
        text = path.read_text("ascii")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read the key-encryption key file {path}: {e}") from e
    if settings.is_production and mode & 0o077:
        raise ConfigError(
            f"The key-encryption key file {path} is readable by other users: "
            f"run `chmod 600 {path}`."
        )
    return SecretBox(parse_key_encryption_key(text))


class DatabaseKeySource:
    """The signing keys of the database (``AUTHGATE_SIGNING_KEYS=database``), shared by every
    instance, their private keys sealed with the key-encryption key.

    The ring is held in memory: signing and verifying never query the database. It is re-read
    when the revocation feed announces that the keys changed (``on_feed_event``, in a
    background thread), and when a token names an unknown ``kid`` (at most every
    ``_KEY_RELOAD_INTERVAL_SECONDS``). A pending key starts signing at its ``activates_at`` and a
    superseded key leaves the JWKS ``retain`` after that, each process on its own clock
    (``refresh_if_changed``: one comparison)."""

    def __init__(
        self,
        settings: Settings,
        store: SigningKeyStore,
        box: SecretBox,
        clock: Clock,
        *,
        load: bool = True,
    ):
        """``load=False`` (commands): read nothing yet; ``ring`` is unset until ``load()``."""
        self._store = store
        self._box = box
        self._clock = clock
        self._production = settings.is_production
        self._publish_delay = timedelta(seconds=settings.key_publish_delay_seconds)
        self._rotation_days = settings.key_rotation_days
        self.retain = timedelta(
            seconds=settings.access_token_ttl_seconds + RETIREMENT_LEEWAY_SECONDS
        )
        # Told of each key this process added (the feed announces it to the other processes).
        self.on_change: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._records: list[SigningKeyRecord] = []
        self._opened: dict[str, SigningKey] = {}  # written under ``_lock`` only
        # Reads of the keys are numbered: one that started before the installed one is stale
        # (two threads loading at once), and is dropped rather than installed over it.
        self._reads = 0
        self._installed_read = 0
        self._next_change = float("inf")
        self._last_reload = 0.0
        if load:
            records = store.list_signing_keys()
            if not records:
                records = self._first_key()
            self.ring = self._install(records)

    def follow(self, feed: RevocationFeed) -> None:
        """Learn of keys other processes add from ``feed``, announce ours through it, and rotate
        on schedule (and delete retired keys) in its housekeeping."""
        self.on_change = feed.announce_keys_changed
        feed.on_apply.append(self.on_feed_event)
        feed.housekeeping += [self.rotate_if_due, self.prune]

    # Reading ---------------------------------------------------------------------------------

    def _first_key(self) -> list[SigningKeyRecord]:
        if self._production:
            raise ConfigError(
                "No signing key in the database (AUTHGATE_SIGNING_KEYS=database). Import the key "
                "directory with `authgate keys import-dir`, or create a key with "
                "`authgate keys rotate`."
            )
        key = new_signing_key(dev=True, now=self._clock.now())
        if self._store.add_signing_key(
            self._record(key, activates_at=key.created_at, succeeds=FIRST_SIGNING_KEY),
            now=key.created_at,
        ):
            log.warning(
                "Generated a development signing key %s in the database. Production refuses "
                "development keys; run `authgate keys rotate`.",
                key.kid,
            )
        return self._store.list_signing_keys()  # ours, or the one another process added first

    def _open(self, record: SigningKeyRecord) -> SigningKey:
        """``record``'s key, opened once (called under ``_lock``)."""
        key = self._opened.get(record.kid)
        if key is None:
            key = self._opened[record.kid] = self._unseal(record)
        return key

    def _unseal(self, record: SigningKeyRecord) -> SigningKey:
        try:
            raw = self._box.open(record.sealed_private_key, context=signing_key_context(record.kid))
            private_key = private_key_from_raw(raw)
        except (SecretBoxError, ValueError) as e:
            hint = (
                " A key left from development: in production, `authgate keys rotate "
                "--immediate` deletes it and adds a production key."
                if record.dev
                else ""
            )
            raise ConfigError(
                f"The signing key {record.kid} in the database does not open with this "
                "key-encryption key: AUTHGATE_KEY_ENCRYPTION_KEY (or its _FILE) must be the key "
                f"the signing keys were sealed with, the same on every instance.{hint}"
            ) from e
        return SigningKey(
            kid=record.kid, private_key=private_key, created_at=record.created_at, dev=record.dev
        )

    def _schedule(self, records: Sequence[SigningKeyRecord], now: datetime) -> KeySchedule:
        schedule = schedule_keys(
            [ScheduledKey(r.kid, r.created_at, r.activates_at) for r in records],
            now=now,
            retain=self.retain,
        )
        if schedule is None:
            raise ConfigError("No signing key in the database.")
        return schedule

    def _install(
        self, records: list[SigningKeyRecord] | None = None, *, read: int | None = None
    ) -> KeyRing:
        """The ring of ``records`` now (``ConfigError`` if it cannot sign here), installed;
        ``read``: their number (``_next_read``), dropped if a later read is installed already.
        Without ``records``: the schedule of the keys held, if its next change is still due
        (another thread may have made it)."""
        with self._lock:
            if records is None:
                if self._clock.timestamp() < self._next_change:
                    return self.ring
                records = self._records
            elif read is not None and read < self._installed_read:
                return self.ring  # a newer read is in place
            now = self._clock.now()
            schedule = self._schedule(records, now)
            by_kid = {r.kid: r for r in records}
            keys = [self._open(by_kid[kid]) for kid in schedule.published]
            ring = KeyRing(keys, active=schedule.active)
            if self._production and ring.active.dev:
                raise ConfigError(
                    f"The active signing key {ring.active.kid} was generated for development. "
                    "Create a production key with `authgate keys rotate --immediate`."
                )
            self._records = list(records)
            if read is not None:
                self._installed_read = read
            self._next_change = (
                schedule.next_change.timestamp() if schedule.next_change else float("inf")
            )
            for kid in [k for k in self._opened if k not in by_kid or k in schedule.retired]:
                del self._opened[kid]
            self.ring = ring
            return ring

    def load(self) -> bool:
        """Re-read the keys from the database. Keys that cannot be used (sealed with another
        key-encryption key, a development key in production) keep the current ones, logged:
        a request never fails on them. True when the new keys are in use."""
        read = self._next_read()
        try:
            self._install(self._store.list_signing_keys(), read=read)
        except ConfigError as e:
            log.error("kept the current signing keys: %s", e)
            return False
        return True

    def _next_read(self) -> int:
        with self._lock:
            self._reads += 1
            return self._reads

    def on_feed_event(self, kind: RevocationKind, subject: str) -> None:
        """The revocation feed's ``on_apply``: a ``signing_keys`` event for a key this process
        does not hold yet re-reads the keys (on the feed's thread, never a request's)."""
        if kind == RevocationKind.SIGNING_KEYS and all(r.kid != subject for r in self._records):
            self.load()

    # The hot path ----------------------------------------------------------------------------

    def refresh_if_changed(self) -> None:
        """A pending key's time to sign (or a retired key's to leave) has come: rebuild the ring
        from the keys in memory. Otherwise one comparison."""
        if self._clock.timestamp() >= self._next_change:
            try:
                self._install()
            except ConfigError as e:
                self._next_change = float("inf")  # said once; the next load tries again
                log.error("kept the current signing keys: %s", e)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        self.refresh_if_changed()
        return self.ring.jwks()

    def reload(self) -> bool:
        now = self._clock.timestamp()
        if now - self._last_reload < _KEY_RELOAD_INTERVAL_SECONDS:
            return False
        self._last_reload = now
        try:
            return self.load()
        except StoreUnavailableError as e:
            # The token names a key this process does not hold and cannot learn of now: it is
            # refused as any token of an unknown key (401), not turned into a 503 — a forged
            # kid would otherwise make the outage louder; the feed re-reads the keys later.
            log.warning("could not re-read the signing keys for an unknown kid: %s", e)
            return False

    # Rotation --------------------------------------------------------------------------------

    def _record(
        self, key: SigningKey, *, activates_at: datetime, succeeds: str | None
    ) -> SigningKeyRecord:
        return SigningKeyRecord(
            kid=key.kid,
            sealed_private_key=self._box.seal(
                raw_private_key(key), context=signing_key_context(key.kid)
            ),
            created_at=key.created_at,
            activates_at=activates_at,
            dev=key.dev,
            succeeds=succeeds,
        )

    def _check_key_encryption_key(self, records: Sequence[SigningKeyRecord]) -> None:
        """``ConfigError`` unless the newest stored key opens with our key-encryption key: a
        key sealed with another one would be a key no instance can use."""
        if records:
            self._unseal(max(records, key=lambda r: (r.created_at, r.kid)))

    def rotate(
        self,
        *,
        immediate: bool = False,
        context: AuditContext | None = None,
        succeeds: str | None = None,
    ) -> SigningKeyRecord | None:
        """Add a new key: published at once, signing after the publish delay (``immediate``:
        at once — for a compromised key; clients holding the JWKS refetch it on the unknown
        kid; pending keys, which never signed, are deleted with it). The first key of the
        database always signs at once. With ``succeeds``, only if no other key succeeds that
        one (a scheduled rotation): None when another process won."""
        now = self._clock.now()
        key = new_signing_key(dev=False, now=now)
        existing = self._store.list_signing_keys()
        if immediate and self._production:
            existing = self._delete_stale_development_keys(existing)
        self._check_key_encryption_key(existing)
        first = not existing
        record = self._record(
            key,
            activates_at=now if immediate or first else now + self._publish_delay,
            succeeds=FIRST_SIGNING_KEY if first and succeeds is None else succeeds,
        )
        audit = (
            new_event(
                KEY_ROTATED,
                time=now,
                context=context,
                details={"kid": key.kid, "activates_at": record.activates_at.isoformat()},
            )
            if context is not None
            else None
        )
        # An immediate rotation also deletes the keys still pending (that never signed): one
        # of them, activating later, would take over from the emergency key.
        if not self._store.add_signing_key(record, now=now, audit=audit, drop_pending=immediate):
            return None
        self.load()
        if self.on_change is not None:
            self.on_change(key.kid)
        return record

    def _opens(self, record: SigningKeyRecord) -> bool:
        try:
            self._unseal(record)
        except ConfigError:
            return False
        return True

    def _delete_stale_development_keys(
        self, records: list[SigningKeyRecord]
    ) -> list[SigningKeyRecord]:
        """In production, delete the ``dev-`` keys that do not open with this key-encryption
        key (left from development, sealed with its generated key): production signs with no
        ``dev-`` key, and these would block every start and rotation. The other keys."""
        stale = [r for r in records if r.dev and not self._opens(r)]
        if not stale:
            return records
        self._store.delete_signing_keys([r.kid for r in stale])
        log.warning(
            "Deleted the development signing key(s) %s: they do not open with this "
            "key-encryption key (left from development).",
            ", ".join(r.kid for r in stale),
        )
        return [r for r in records if r not in stale]

    def rotate_if_due(self) -> SigningKeyRecord | None:
        """``AUTHGATE_KEY_ROTATION_DAYS``: a new key when the newest is older than that (the
        revocation feed's housekeeping, on every instance; one of them adds it)."""
        if self._rotation_days is None:
            return None
        records = self._store.list_signing_keys()
        if not records:
            return None
        newest = max(records, key=lambda r: (r.created_at, r.kid))
        if self._clock.now() - newest.created_at < timedelta(days=self._rotation_days):
            return None
        record = self.rotate(succeeds=newest.kid)
        if record is not None:
            log.warning(
                "Rotated the signing keys (AUTHGATE_KEY_ROTATION_DAYS=%d): %s signs from %s",
                self._rotation_days,
                record.kid,
                record.activates_at.isoformat(),
            )
        return record

    def prune(self) -> int:
        """Delete keys retired for at least ``retain`` more (superseded longer than twice the
        longest token lifetime ago): an instance whose clock is behind ours still verifies
        with a key that just retired here, and must not meet a database without it."""
        records = self._store.list_signing_keys()
        if not records:
            return 0
        retired = self._schedule(records, self._clock.now() - self.retain).retired
        return self._store.delete_signing_keys(retired)

    def import_directory(
        self, directory: Path, *, context: AuditContext | None = None
    ) -> list[str]:
        """Copy the keys of a key directory into the database (idempotent: keys already there
        are skipped); their kids. They keep their roles: the directory's newest key signs
        (unless the database holds a newer key)."""
        ring = load_keyring(directory)
        if ring is None:
            return []
        existing = self._store.list_signing_keys()
        self._check_key_encryption_key(existing)
        known = {r.kid for r in existing}
        now = self._clock.now()
        imported = []
        for key in sorted(ring.keys, key=lambda k: (k.created_at, k.kid)):
            if key.kid in known:
                continue
            audit = (
                new_event(
                    KEY_ROTATED,
                    time=now,
                    context=context,
                    details={"kid": key.kid, "imported_from": str(directory)},
                )
                if context is not None
                else None
            )
            record = self._record(key, activates_at=key.created_at, succeeds=None)
            if self._store.add_signing_key(record, now=now, audit=audit):
                imported.append(key.kid)
        if imported:
            self.load()
            if self.on_change is not None:
                self.on_change(imported[-1])
        return imported

    def records(self) -> list[SigningKeyRecord]:
        """Every stored key, by activation (for ``authgate keys list``)."""
        return self._store.list_signing_keys()

    def state(self, record: SigningKeyRecord, schedule: KeySchedule) -> str:
        """``active``, ``pending``, ``verifies`` or ``retired``: what ``record`` does now."""
        if record.kid == schedule.active:
            return "active"
        if record.kid in schedule.retired:
            return "retired"
        return "pending" if record.activates_at > self._clock.now() else "verifies"

    def schedule(self) -> KeySchedule | None:
        records = self._store.list_signing_keys()
        return self._schedule(records, self._clock.now()) if records else None
