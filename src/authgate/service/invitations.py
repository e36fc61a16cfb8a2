"""Invitations to a tenant, by email: who may invite with which role, and who may accept.

A tenant's owners and admins invite, list and revoke; nobody invites with a role above their
own (only owners invite owners), and the inviter must still be allowed to grant the role when
the invitation is accepted. The invitation is accepted by a logged-in user whose address is the
one invited: the mailed link proves that address, so accepting also marks it verified, and a
user who registers through the link (``Accounts.register`` with its ``invitation_token``) starts
verified: they log in and accept right away, with no separate verification mail, even where
verification is required.

Inviting mails someone else: it is throttled per inviting user and client IP
(``mail_rate_limit_per_ip`` each) and per invited address (``mail_rate_limit_per_address``,
shared with email changes to that address), 429 with ``retry_after`` beyond.
"""

from __future__ import annotations

import secrets
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.account_tokens import TOKEN_LIFETIMES, TokenPurpose, hash_account_token
from authgate.errors import (
    ConflictError,
    InsufficientRoleError,
    InvalidAccountTokenError,
    InvitationEmailMismatchError,
    NotFoundError,
    TokenRevokedError,
)
from authgate.service.mailed_links import MAIL_TO_ADDRESS
from authgate.service.tenants import TENANT_MANAGERS
from authgate.store.records import InvitationRecord, TenantRecord, TenantRole

if TYPE_CHECKING:
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.config import Settings
    from authgate.core.clocks import Clock
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.mailed_links import MailedLinks
    from authgate.service.principals import Principal, TenantAccess
    from authgate.store.protocols import Store


@dataclass(eq=False, repr=False)
class Invitations:
    store: Store
    _: KW_ONLY
    clock: Clock
    feed: RevocationFeed
    authorization: Authorization
    links: MailedLinks
    settings: Settings
    throttle: LoginThrottle
    audit: Audit

    def invite(
        self,
        principal: Principal,
        tenant_id: str,
        *,
        email: str,
        role: TenantRole,
        ip: str | None,
    ) -> InvitationRecord:
        access = self._manage(principal, tenant_id)
        if role.rank > access.role.rank:
            raise InsufficientRoleError(
                "You cannot invite with a role above your own; only owners invite owners."
            )
        tenant = self.store.get_tenant(tenant_id)
        if tenant is None or tenant.personal:
            raise ConflictError("A personal tenant has no other members; create a team tenant.")
        existing = self.store.find_user_by_email(email)
        if existing is not None and self.store.get_member_role(tenant_id, existing.id):
            raise ConflictError("This address belongs to a member of the tenant already.")
        inviter = principal.user
        settings = self.settings
        per_inviter = settings.mail_rate_limit_per_ip  # an inviting user counts as one client
        self.throttle.spend_request(
            "invitation", f"user:{inviter.id}", ip, per_name=per_inviter, per_ip=per_inviter
        )
        self.throttle.spend_request(
            MAIL_TO_ADDRESS,
            email,
            ip,
            per_name=settings.mail_rate_limit_per_address,
            per_ip=settings.mail_rate_limit_per_ip,
        )
        now = self.clock.now()
        _, token_hash, link = self.links.new_token(TokenPurpose.INVITATION)
        invitation = InvitationRecord(
            id=secrets.token_hex(12),
            tenant_id=tenant_id,
            tenant_name=tenant.name,
            email=email,
            role=role,
            inviter_id=inviter.id,
            inviter_name=inviter.name or inviter.email,
            created_at=now,
            expires_at=now + TOKEN_LIFETIMES[TokenPurpose.INVITATION],
        )
        mail = self.links.compose(
            "invitation",
            to=email,
            values={
                "link": link,
                "tenant_name": tenant.name,
                "inviter_name": invitation.inviter_name or "",
                "role": role.value,
            },
        )
        audit = self.audit.event(
            events.INVITATION_CREATED,
            actor=principal,
            user_id=existing.id if existing is not None else None,
            tenant_id=tenant_id,
            details={"invitation_id": invitation.id, "email": email, "role": role.value},
        )
        self.store.create_invitation(invitation, token_hash, mail, audit=audit)
        self.links.mail_sender.notify()
        return invitation

    def list_invitations(self, principal: Principal, tenant_id: str) -> list[InvitationRecord]:
        self._manage(principal, tenant_id)
        return self.store.list_invitations(tenant_id, now=self.clock.now())

    def revoke_invitation(self, principal: Principal, tenant_id: str, invitation_id: str) -> None:
        self._manage(principal, tenant_id)
        if not self.store.revoke_invitation(tenant_id, invitation_id, now=self.clock.now()):
            raise NotFoundError("No such open invitation.")

    def preview_invitation(self, token: str) -> InvitationRecord:
        """What the invitation page shows before anyone logs in (the token is the secret)."""
        invitation = self.store.find_invitation(hash_account_token(token), now=self.clock.now())
        if invitation is None:
            raise InvalidAccountTokenError()
        return invitation

    def accept_invitation(
        self, principal: Principal, token: str
    ) -> tuple[TenantRecord, TenantRole]:
        """Join the tenant (once); the caller's address must be the one invited."""
        self.authorization.require_session(principal)
        user = self.store.get_user(principal.user.id)
        if user is None:
            raise TokenRevokedError()
        token_hash = hash_account_token(token)
        now = self.clock.now()
        invitation = self.store.find_invitation(token_hash, now=now)
        if invitation is None:
            raise InvalidAccountTokenError()
        if invitation.email.casefold() != user.email.casefold():
            raise InvitationEmailMismatchError()
        inviter_role = (
            self.store.get_member_role(invitation.tenant_id, invitation.inviter_id)
            if invitation.inviter_id
            else None
        )
        if inviter_role is None or inviter_role.rank < invitation.role.rank:
            raise InvalidAccountTokenError(
                "Whoever sent this invitation can no longer grant it; ask for a new one."
            )
        accepted = self.store.accept_invitation(
            token_hash,
            user_id=user.id,
            email=user.email,
            now=now,
            audit=self.audit.event(events.INVITATION_ACCEPTED, actor=principal, user_id=user.id),
        )
        if accepted is None:
            raise InvalidAccountTokenError()
        joined, revoked = accepted
        self.feed.announce(revoked)
        tenant = self.store.get_tenant(joined.tenant_id)
        if tenant is None:
            raise NotFoundError("No such tenant.")
        return tenant, joined.role

    def _manage(self, principal: Principal, tenant_id: str) -> TenantAccess:
        access = self.authorization.authorize(
            principal,
            scopes=["tenants:write"],
            tenant_id=tenant_id,
            tenant_roles=[role.value for role in TENANT_MANAGERS],
        )
        assert access is not None
        return access
