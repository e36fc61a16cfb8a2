"""The signing keys the service issues access tokens with, from their directory."""

from __future__ import annotations

import logging

from authgate.config import Settings
from authgate.core.clocks import Clock
from authgate.core.keys import KeyRing, generate_key, insecure_key_files, load_keyring
from authgate.errors import ConfigError

log = logging.getLogger("authgate")

_KEY_RELOAD_INTERVAL_SECONDS = 10.0


class KeySource:
    """The signing keys, reloaded from their directory when a token names an unknown ``kid``."""

    def __init__(self, settings: Settings, clock: Clock):
        self._directory = settings.resolved_keys_dir
        self._production = settings.is_production
        self._clock = clock
        self._last_reload = 0.0
        self._directory_mtime = self._mtime()
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

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every worker publishes a key the moment ``keys rotate`` wrote it (one ``stat``), not
        only the worker that happened to sign with it first."""
        self.refresh_if_changed()
        return self.ring.jwks()

    def refresh_if_changed(self) -> None:
        """Pick up a key added by ``authgate keys rotate`` before signing: one ``stat``."""
        mtime = self._mtime()
        if mtime != self._directory_mtime:
            self._directory_mtime = mtime
            self._last_reload = 0.0
            self.reload()

    def reload(self) -> bool:
        """Re-read the key directory, at most every few seconds; True when it was re-read.

        A directory that cannot be used now (a key being written, a bad file) keeps the keys
        in use and is logged: a request never fails on it."""
        now = self._clock.timestamp()
        if now - self._last_reload < _KEY_RELOAD_INTERVAL_SECONDS:
            return False
        self._last_reload = now
        try:
            ring = load_keyring(self._directory)
            if ring is not None:
                self.ring = self._checked(ring)
        except ConfigError as e:
            log.error("kept the current signing keys: %s", e)
        return True
