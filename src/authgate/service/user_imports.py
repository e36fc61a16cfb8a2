"""Moving in: users (and their API tokens) brought across from another app.

Rows stream in from a source (``authgate.backends.import_sources``) and are written a batch per
transaction: every row of a batch is checked first (a bad one is refused with where it was and
why, and the others go on), then the store writes the batch whole or not at all. Memory stays
bounded by the batch size; progress and refusals are reported as they happen."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from authgate.core import audit as events
from authgate.core.api_tokens import (
    hash_api_token_secret,
    legacy_api_token_id,
    looks_like_legacy_api_token,
)
from authgate.core.user_imports import (
    ImportedUser,
    ImportLedger,
    ImportOutcome,
    PasswordPrehash,
    SourceRow,
    parse_imported_user,
)
from authgate.errors import ValidationFailedError
from authgate.store.records import ApiTokenRecord

if TYPE_CHECKING:
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.api_tokens import ApiTokens
    from authgate.service.audit import Audit
    from authgate.store.protocols import Store

log = logging.getLogger("authgate")

DEFAULT_BATCH_SIZE = 1000
DEFAULT_LEGACY_TOKEN_DAYS = 90
LEGACY_TOKEN_FIELDS = ("token", "legacy_user_id", "email", "name")

OnConflict = Literal["skip", "update"]
Refusal = Callable[[str, str], None]  # (where, reason)


@dataclass
class ImportReport:
    """Counts so far; ``read`` counts every row met, refused ones included."""

    dry_run: bool
    read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    refused: int = 0

    def count(self, outcome: ImportOutcome) -> None:
        if outcome is ImportOutcome.CREATED:
            self.created += 1
        elif outcome is ImportOutcome.UPDATED:
            self.updated += 1
        elif outcome is ImportOutcome.SKIPPED:
            self.skipped += 1
        else:
            self.refused += 1


def _reason(error: ValidationFailedError) -> str:
    return "; ".join(f"{name}: {message}" for name, message in error.fields.items())


def _is_utf8(value: object) -> bool:
    """False for text no database column can hold: bytes of another encoding read with
    ``surrogateescape``, or a lone surrogate from JSON."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mapped(fields: Mapping[str, object], field_map: Mapping[str, str] | None) -> dict[str, object]:
    if field_map is None:
        return dict(fields)
    return {name: fields.get(column) for name, column in field_map.items()}


@dataclass(eq=False, repr=False)
class UserImports:
    settings: Settings
    store: Store
    _: KW_ONLY
    clock: Clock
    feed: RevocationFeed
    api_tokens: ApiTokens
    audit: Audit

    # Users -----------------------------------------------------------------------------------

    def import_users(
        self,
        rows: Iterable[SourceRow],
        *,
        field_map: Mapping[str, str] | None = None,
        on_conflict: OnConflict = "skip",
        dry_run: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        password_prehash: PasswordPrehash | None = None,
        on_refused: Refusal | None = None,
        on_batch: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        """Import ``rows`` (``field_map`` maps authgate's field names to the source's; none: the
        rows use authgate's names). Re-running is safe: an email already there is skipped or
        updated (``on_conflict``). ``dry_run`` checks and decides everything, writes nothing,
        and reports the counts the real run would: each batch is decided by the same code, the
        dry run's with a ledger of what its earlier batches would have written (the real run
        finds that in the database), so an email, username or legacy id met again batches
        later is decided alike."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        report = ImportReport(dry_run=dry_run)
        ledger = ImportLedger() if dry_run else None
        refuse = on_refused or (lambda _where, _reason: None)
        batch: list[tuple[str, ImportedUser]] = []
        for row in rows:
            report.read += 1
            if row.fields is None:
                report.refused += 1
                refuse(row.where, row.problem or "unreadable")
                continue
            try:
                user = parse_imported_user(
                    _mapped(row.fields, field_map), password_prehash=password_prehash
                )
            except ValidationFailedError as e:
                report.refused += 1
                refuse(row.where, _reason(e))
                continue
            batch.append((row.where, user))
            if len(batch) >= batch_size:
                self._write_batch(batch, report, on_conflict, ledger, refuse)
                batch = []
                if on_batch:
                    on_batch(report)
        if batch:
            self._write_batch(batch, report, on_conflict, ledger, refuse)
        if on_batch:
            on_batch(report)
        log.info(
            "users import%s: %d read, %d created, %d updated, %d skipped, %d refused",
            " (dry run)" if dry_run else "",
            report.read,
            report.created,
            report.updated,
            report.skipped,
            report.refused,
        )
        return report

    def _write_batch(
        self,
        batch: Sequence[tuple[str, ImportedUser]],
        report: ImportReport,
        on_conflict: OnConflict,
        ledger: ImportLedger | None,
        refuse: Refusal,
    ) -> None:
        outcomes, revoked = self.store.import_users(
            [user for _where, user in batch],
            on_conflict=on_conflict,
            dry_run=ledger is not None,
            now=self.clock.now(),
            ledger=ledger,
            audit=self.audit.event(events.USER_IMPORTED, details={"users": len(batch)}),
        )
        for (where, _user), outcome in zip(batch, outcomes, strict=True):
            report.count(outcome)
            if outcome.refusal:
                refuse(where, outcome.refusal)
        if revoked:
            self.feed.announce(revoked)

    # Legacy API tokens -----------------------------------------------------------------------

    def import_api_tokens(
        self,
        rows: Iterable[SourceRow],
        *,
        field_map: Mapping[str, str] | None = None,
        scopes: Sequence[str] = ("read", "write"),
        expires_in_days: int = DEFAULT_LEGACY_TOKEN_DAYS,
        dry_run: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_refused: Refusal | None = None,
        on_batch: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        """Keep another app's opaque API tokens working: each becomes an authgate API token of
        its user (found by ``legacy_user_id``, the ``legacy_id`` given at the users' import, or
        by ``email``), bound to the user's personal tenant, stored only as a hash, expiring in
        ``expires_in_days``. A token imported before is skipped."""
        unknown = [scope for scope in scopes if scope not in self.api_tokens.scopes]
        if unknown:
            raise ValidationFailedError({"scopes": f"Unknown scope(s): {', '.join(unknown)}."})
        if not 1 <= expires_in_days <= self.settings.api_token_max_ttl_days:
            raise ValidationFailedError(
                {"expires_in_days": f"Use 1 to {self.settings.api_token_max_ttl_days} days."}
            )
        report = ImportReport(dry_run=dry_run)
        refuse = on_refused or (lambda _where, _reason: None)
        batch: list[tuple[str, ApiTokenRecord]] = []
        for row in rows:
            report.read += 1
            record, problem = self._legacy_token_record(
                row, field_map, scopes=tuple(dict.fromkeys(scopes)), days=expires_in_days
            )
            if record is None:
                report.refused += 1
                refuse(row.where, problem or "unreadable")
                continue
            batch.append((row.where, record))
            if len(batch) >= batch_size:
                self._write_tokens(batch, report, dry_run)
                batch = []
                if on_batch:
                    on_batch(report)
        if batch:
            self._write_tokens(batch, report, dry_run)
        if on_batch:
            on_batch(report)
        log.info(
            "api tokens import%s: %d read, %d created, %d skipped, %d refused",
            " (dry run)" if dry_run else "",
            report.read,
            report.created,
            report.skipped,
            report.refused,
        )
        return report

    def _legacy_token_record(
        self,
        row: SourceRow,
        field_map: Mapping[str, str] | None,
        *,
        scopes: tuple[str, ...],
        days: int,
    ) -> tuple[ApiTokenRecord | None, str | None]:
        if row.fields is None:
            return None, row.problem
        fields = _mapped(row.fields, field_map)
        token = fields.get("token")
        if not isinstance(token, str) or not looks_like_legacy_api_token(token.strip()):
            return None, "token: missing, or not an opaque token of 16 to 256 printable characters"
        token = token.strip()
        legacy_user_id, email = fields.get("legacy_user_id"), fields.get("email")
        name = fields.get("name")
        if not all(_is_utf8(value) for value in (legacy_user_id, email, name)):
            return None, "not valid UTF-8 (save the file as UTF-8)"
        if legacy_user_id not in (None, ""):
            user = self.store.find_user_by_legacy_id(str(legacy_user_id))
        elif isinstance(email, str) and email.strip():
            user = self.store.find_user_by_login(email.strip()) if "@" in email else None
        else:
            return None, "give the token's user: legacy_user_id or email"
        if user is None:
            return None, "no imported user with this legacy_user_id or email"
        tenant_id = self.store.personal_tenant_id(user.id)
        if tenant_id is None:
            return None, "the user has no personal tenant"
        now = self.clock.now()
        record = ApiTokenRecord(
            id=legacy_api_token_id(token),
            user_id=user.id,
            tenant_id=tenant_id,
            name=(str(name).strip()[:100] if name else "") or "imported",
            secret_hash=hash_api_token_secret(token),
            scopes=scopes,
            resource=None,
            created_at=now,
            expires_at=now + timedelta(days=days),
            revoked_at=None,
            last_used_at=None,
            last_used_ip=None,
        )
        return record, None

    def _write_tokens(
        self, batch: Sequence[tuple[str, ApiTokenRecord]], report: ImportReport, dry_run: bool
    ) -> None:
        created = self.store.import_api_tokens([record for _w, record in batch], dry_run=dry_run)
        for is_new in created:
            if is_new:
                report.created += 1
            else:
                report.skipped += 1
