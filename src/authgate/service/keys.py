"""The signing keys the service issues access tokens with, from their directory; the
key-encryption key that seals secrets stored in the database (``load_secret_box``)."""

from __future__ import annotations

import logging
import os
import time

from authgate.config import Settings
from authgate.core.clocks import Clock
from authgate.core.keys import KeyRing, generate_key, insecure_key_files, load_keyring
from authgate.core.secret_boxes import SecretBox, generate_key_file, parse_key_encryption_key
from authgate.errors import ConfigError

log = logging.getLogger("authgate")

_KEY_RELOAD_INTERVAL_SECONDS = 10.0
# A file system may stamp changes with a coarse clock (a few ms): a directory changed again within
# the tick it was read in keeps its mtime. While the mtime read is this recent, compare listings.
_RACY_MTIME_NS = 1_000_000_000


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
