"""Tenants and their members: who may see, rename, delete a tenant, and grant which role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.audit import AuditEvent
from authgate.errors import ConflictError, InsufficientRoleError, NotFoundError
from authgate.service.principals import Principal, TenantAccess
from authgate.store.records import (
    MemberRecord,
    RevocationKind,
    TenantRecord,
    TenantRole,
    membership_subject,
)

if TYPE_CHECKING:
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.store.protocols import Store

TENANT_MANAGERS = (TenantRole.OWNER, TenantRole.ADMIN)


@dataclass(eq=False, repr=False)
class Tenants:
    store: Store
    _: KW_ONLY
    clock: Clock
    feed: RevocationFeed
    authorization: Authorization
    audit: Audit

    def list_tenants(self, principal: Principal) -> list[tuple[TenantRecord, TenantRole]]:
        tenants = self.store.list_user_tenants(principal.user.id)
        if principal.api_token is not None:
            self.authorization.authorize(principal, scopes=["tenants:read"])
            tenants = [(t, r) for t, r in tenants if t.id == principal.api_token.tenant_id]
        return tenants

    def create_tenant(self, principal: Principal, name: str) -> TenantRecord:
        self.authorization.require_session(principal)
        return self.store.create_tenant(
            name=name,
            owner_id=principal.user.id,
            now=self.clock.now(),
            audit=self.audit.event(
                events.TENANT_CREATED,
                actor=principal,
                user_id=principal.user.id,
                details={"name": name},
            ),
        )

    def get_tenant(self, principal: Principal, tenant_id: str) -> tuple[TenantRecord, TenantRole]:
        access = self.authorization.authorize(
            principal, scopes=["tenants:read"], tenant_id=tenant_id
        )
        assert access is not None
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFoundError("No such tenant.")
        return tenant, access.role

    def rename_tenant(
        self, principal: Principal, tenant_id: str, name: str
    ) -> tuple[TenantRecord, TenantRole]:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        tenant = self.store.rename_tenant(tenant_id, name)
        if tenant is None:
            raise NotFoundError("No such tenant.")
        return tenant, access.role

    def delete_tenant(self, principal: Principal, tenant_id: str) -> None:
        self._manage(principal, tenant_id, (TenantRole.OWNER,))
        tenant = self.store.get_tenant(tenant_id)
        if tenant is not None and tenant.personal:
            raise ConflictError("A personal tenant is deleted only with its user.")
        revoked = self.store.delete_tenant(
            tenant_id,
            now=self.clock.now(),
            audit=self.audit.event(
                events.TENANT_DELETED,
                actor=principal,
                tenant_id=tenant_id,
                details={"name": tenant.name} if tenant is not None else None,
            ),
        )
        if revoked is None:
            raise NotFoundError("No such tenant.")
        self.feed.announce(revoked)

    # Members ---------------------------------------------------------------------------------

    def list_members(self, principal: Principal, tenant_id: str) -> list[MemberRecord]:
        self.authorization.authorize(principal, scopes=["tenants:read"], tenant_id=tenant_id)
        return self.store.list_members(tenant_id)

    def add_member(
        self, principal: Principal, tenant_id: str, *, email: str, role: TenantRole
    ) -> MemberRecord:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        _check_grant(access, role)
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None or tenant.personal:
            raise ConflictError("A personal tenant has no other members; create a team tenant.")
        user = self.store.find_user_by_login(email)
        if user is None:
            raise NotFoundError("No account uses this email address.")
        self.store.add_member(
            tenant_id,
            user.id,
            role,
            now=self.clock.now(),
            audit=self._member_event(events.MEMBER_ADDED, principal, tenant_id, user.id, role),
        )
        self.feed.announce([(RevocationKind.MEMBERSHIP, membership_subject(tenant_id, user.id))])
        return self._member(tenant_id, user.id)

    def set_member_role(
        self, principal: Principal, tenant_id: str, user_id: str, role: TenantRole
    ) -> MemberRecord:
        access = self._manage(principal, tenant_id, TENANT_MANAGERS)
        current = self.store.get_member_role(tenant_id, user_id)
        if current is None:
            raise NotFoundError("No such member.")
        _check_grant(access, role)
        _check_grant(access, current)
        self.store.set_member_role(
            tenant_id,
            user_id,
            role,
            now=self.clock.now(),
            audit=self._member_event(
                events.MEMBER_ROLE_CHANGED, principal, tenant_id, user_id, role
            ),
        )
        self.feed.announce([(RevocationKind.MEMBERSHIP, membership_subject(tenant_id, user_id))])
        return self._member(tenant_id, user_id)

    def remove_member(self, principal: Principal, tenant_id: str, user_id: str) -> None:
        """Remove a member (or leave, when it is the caller); their tokens for it stop at once."""
        leaving = user_id == principal.user.id
        access = self._manage(
            principal, tenant_id, tuple(TenantRole) if leaving else TENANT_MANAGERS
        )
        current = self.store.get_member_role(tenant_id, user_id)
        if current is None:
            raise NotFoundError("No such member.")
        if not leaving:
            _check_grant(access, current)
        revoked = self.store.remove_member(
            tenant_id,
            user_id,
            now=self.clock.now(),
            audit=self._member_event(events.MEMBER_REMOVED, principal, tenant_id, user_id),
        )
        if revoked is None:
            raise NotFoundError("No such member.")
        self.feed.announce(revoked)

    def _member_event(
        self,
        type: str,
        principal: Principal,
        tenant_id: str,
        user_id: str,
        role: TenantRole | None = None,
    ) -> AuditEvent:
        return self.audit.event(
            type,
            actor=principal,
            user_id=user_id,
            tenant_id=tenant_id,
            details={"role": role.value} if role is not None else None,
        )

    def _manage(
        self, principal: Principal, tenant_id: str, roles: Sequence[TenantRole]
    ) -> TenantAccess:
        access = self.authorization.authorize(
            principal,
            scopes=["tenants:write"],
            tenant_id=tenant_id,
            tenant_roles=[role.value for role in roles],
        )
        assert access is not None
        return access

    def _member(self, tenant_id: str, user_id: str) -> MemberRecord:
        for member in self.store.list_members(tenant_id):
            if member.user_id == user_id:
                return member
        raise NotFoundError("No such member.")


def _check_grant(access: TenantAccess, role: TenantRole) -> None:
    """Admins manage admins, members and viewers; only owners touch owners."""
    if role is TenantRole.OWNER and access.role is not TenantRole.OWNER:
        raise InsufficientRoleError("Only an owner can grant, change or remove an owner.")
