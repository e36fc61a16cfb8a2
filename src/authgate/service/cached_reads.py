"""Reads that go through the process's ``AuthCache``: a user, an API token (with its user and
membership), a membership.

A value loaded while a revocation arrived may already be stale: it is kept only if the cache's
generation did not move during the load (``GuardedCache.put_if_current``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authgate.store.records import ApiTokenRecord, TenantRole, UserRecord, membership_subject

if TYPE_CHECKING:
    from authgate.backends.auth_cache import AuthCache
    from authgate.store.protocols import Store


@dataclass(eq=False, repr=False)
class CachedReads:
    store: Store
    cache: AuthCache

    def load_user(self, user_id: str) -> UserRecord | None:
        """The user from the store, remembered (the hot path first asks ``cache.users``)."""
        generation = self.cache.users.generation
        user = self.store.get_user(user_id)
        if user is not None:
            self.cache.users.put_if_current(user.id, user, generation=generation)
        return user

    def api_token(self, token_id: str) -> ApiTokenRecord | None:
        """The token, remembered. One the process has not seen is read in one statement with
        its user and the user's role in the token's tenant, each remembered as ``load_user`` and
        ``member_role`` would: the checks that follow (``ApiTokens``) find them in the cache."""
        cache = self.cache
        record = cache.api_tokens.get(token_id)
        if record is not None:
            return record
        generations = (
            cache.api_tokens.generation,
            cache.users.generation,
            cache.memberships.generation,
        )
        found = self.store.get_api_token_with_owner(token_id)
        if found is None:
            return None
        record, user, role = found
        cache.api_tokens.put_if_current(token_id, record, generation=generations[0])
        cache.users.put_if_current(user.id, user, generation=generations[1])
        if role is not None:
            key = membership_subject(record.tenant_id, user.id)
            cache.memberships.put_if_current(key, role, generation=generations[2])
        return record

    def member_role(self, tenant_id: str, user_id: str) -> TenantRole | None:
        key = membership_subject(tenant_id, user_id)
        role = self.cache.memberships.get(key)
        if role is None:
            generation = self.cache.memberships.generation
            role = self.store.get_member_role(tenant_id, user_id)
            if role is not None:
                self.cache.memberships.put_if_current(key, role, generation=generation)
        return role
