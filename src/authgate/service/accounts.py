"""Accounts: registration, one's own profile and password, and the administration of users."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core import audit as events
from authgate.core.account_tokens import hash_account_token
from authgate.core.passwords import find_password_problem
from authgate.core.roles import BUILTIN_ROLES, unknown_roles
from authgate.errors import (
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
    TokenRevokedError,
    UnknownRoleError,
    ValidationFailedError,
)
from authgate.service.principals import ADMIN_ROLE, DEFAULT_ROLES, Principal
from authgate.store.records import RevocationKind, UserRecord, UserStatus

if TYPE_CHECKING:
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
    from authgate.service.audit import Audit
    from authgate.service.authorization import Authorization
    from authgate.service.avatars import Avatars
    from authgate.service.email_addresses import EmailAddresses
    from authgate.store.protocols import Store


log = logging.getLogger("authgate")


@dataclass(eq=False, repr=False)
class Accounts:
    store: Store
    _: KW_ONLY
    clock: Clock
    hasher: PasswordHasher
    throttle: LoginThrottle
    feed: RevocationFeed
    authorization: Authorization
    avatars: Avatars
    email_addresses: EmailAddresses
    audit: Audit
    # The roles an admin may give (core.roles.known_roles of the settings).
    known_roles: tuple[str, ...] = BUILTIN_ROLES

    # One's own account -----------------------------------------------------------------------

    def register(
        self,
        *,
        email: str,
        password: str,
        name: str | None = None,
        username: str | None = None,
        roles: Sequence[str] = DEFAULT_ROLES,
        invitation_token: str | None = None,
    ) -> UserRecord:
        """Create the account; its address is unverified and a verification link is mailed,
        unless ``invitation_token`` opens a live invitation to this very address: that link
        proved it, so the account starts verified (a login works at once, even where
        verification is required) and no mail goes. The invitation stays open (accepting it is
        ``Invitations.accept_invitation``). Any other token (unknown, used, revoked, expired, or
        to another address) registers as if none had been given: no error, the same answer."""
        context = [email, email.split("@", 1)[0], username or ""]
        problem = find_password_problem(password, context=context)
        if problem:
            raise ValidationFailedError({"password": problem})
        user = self.store.create_user(
            email=email,
            username=username,
            name=name,
            password_hash=self.hasher.hash_password(password),
            roles=roles,
            now=self.clock.now(),
            email_verified=self._is_invited(email, invitation_token),
            audit=self.audit.event(events.USER_CREATED, details={"method": "password"}),
        )
        if user.email_verified:
            return user
        try:
            self.email_addresses.send_verification(user)
        except StoreUnavailableError:
            # The account exists: the user asks for a new link later (verify/request, resend).
            log.warning("registered %s; its verification mail could not be queued", user.id)
        return user

    def _is_invited(self, email: str, invitation_token: str | None) -> bool:
        if not invitation_token:
            return False
        invitation = self.store.find_invitation(
            hash_account_token(invitation_token), now=self.clock.now()
        )
        return invitation is not None and invitation.email.casefold() == email.casefold()

    def update_profile(
        self, principal: Principal, *, fields: set[str], name: str | None, username: str | None
    ) -> UserRecord:
        self.authorization.require_session(principal)
        user = principal.user
        updated = self.store.update_profile(
            user.id,
            name=name if "name" in fields else user.name,
            username=username if "username" in fields else user.username,
            now=self.clock.now(),
        )
        if updated is None:
            raise TokenRevokedError()
        self.feed.announce([(RevocationKind.USER, user.id)])
        return updated

    def change_password(
        self, principal: Principal, current: str, new: str, *, ip: str | None = None
    ) -> None:
        """Throttled like a login: a stolen session must not become a password oracle. Needs a
        recent authentication (step-up)."""
        session_id = self.authorization.require_session(principal)
        self.authorization.require_recent_authentication(principal)
        user = self.store.get_user(principal.user.id)
        if user is None or user.password_hash is None:
            raise TokenRevokedError()
        attempt = f"user:{user.id}"
        with self.hasher.reserve():  # busy (503): refused before the throttle counts
            self.throttle.begin_attempt(attempt, ip)
            check = self.hasher.verify_password(current, user.password_hash)
        if not check.ok:
            self.throttle.record_failure(attempt, ip)
            raise ValidationFailedError({"current_password": "The current password is incorrect."})
        self.throttle.record_success(attempt, ip)
        problem = find_password_problem(
            new, context=[user.email, user.email.split("@", 1)[0], user.username or ""]
        )
        if problem:
            raise ValidationFailedError({"new_password": problem})
        revoked = self.store.set_password_hash(
            user.id,
            self.hasher.hash_password(new),
            keep_session_id=session_id,
            now=self.clock.now(),
            audit=self.audit.event(events.PASSWORD_CHANGED, actor=principal, user_id=user.id),
        )
        self.feed.announce((RevocationKind.SESSION, sid) for sid in revoked)

    # Administration --------------------------------------------------------------------------

    def list_users(
        self, actor: Principal, *, query: str | None, page: int, per_page: int
    ) -> tuple[list[UserRecord], int]:
        self.authorization.require_admin(actor)
        return self.store.list_users(query=query, offset=(page - 1) * per_page, limit=per_page)

    def get_user(self, actor: Principal, user_id: str) -> UserRecord:
        self.authorization.require_admin(actor)
        user = self.store.get_user(user_id)
        if user is None:
            raise NotFoundError("No such user.")
        return user

    def update_user_access(
        self,
        actor: Principal,
        user_id: str,
        *,
        roles: Sequence[str] | None,
        status: UserStatus | None,
    ) -> UserRecord:
        """Set roles/status; takes effect on the user's very next request, in every process.

        Roles are chosen among the deployment's (``known_roles``; a role the user already holds
        may stay): any other is ``UnknownRoleError``. No change may leave the deployment without
        an active admin (``LastAdminError``): an admin may step down or disable themselves only
        while another active admin remains, checked in the change's transaction."""
        user = self.get_user(actor, user_id)
        if roles is not None and tuple(roles) != user.roles:
            self.authorization.require_recent_authentication(actor)  # step-up
        if roles is not None:
            unknown = unknown_roles(roles, known=self.known_roles, held=user.roles)
            if unknown:
                raise UnknownRoleError(
                    f"Unknown role(s): {', '.join(unknown)}. The roles of this deployment are "
                    f"{', '.join(self.known_roles)} (AUTHGATE_ROLES adds more).",
                    details={"unknown_roles": unknown, "known_roles": list(self.known_roles)},
                )
        return self.set_user_access(
            user_id, roles=roles, status=status, keep_role=ADMIN_ROLE, actor=actor
        )

    def list_known_roles(self, actor: Principal) -> tuple[str, ...]:
        """The roles an admin can give: the built-in ones and ``AUTHGATE_ROLES``."""
        self.authorization.require_admin(actor)
        return self.known_roles

    def set_user_access(
        self,
        user_id: str,
        *,
        roles: Sequence[str] | None,
        status: UserStatus | None,
        keep_role: str | None = None,
        actor: Principal | None = None,
    ) -> UserRecord:
        """Operator-level change (CLI, admin API after its checks), announced to every process.
        ``keep_role``: refuse (``LastAdminError``) to leave no active user holding it."""
        # The store writes ``user.roles_changed`` / ``user.disabled`` / ``user.enabled`` from
        # this event, for what the change really changed.
        audit = self.audit.event(events.USER_ROLES_CHANGED, actor=actor, user_id=user_id)
        result = self.store.update_access(
            user_id,
            roles=roles,
            status=status,
            now=self.clock.now(),
            keep_role=keep_role,
            audit=audit,
        )
        if result is None:
            raise NotFoundError("No such user.")
        updated, revoked = result
        self.feed.announce(revoked)
        return updated

    def delete_user(self, actor: Principal, user_id: str) -> None:
        """Delete an account; not the last active admin's (``LastAdminError``)."""
        self.authorization.require_admin(actor)
        if self.store.sole_owned_tenants(user_id):
            raise ConflictError(
                "This user is the only owner of a shared tenant; make someone else owner first."
            )
        user = self.store.get_user(user_id)
        revoked = self.store.delete_user(
            user_id,
            now=self.clock.now(),
            keep_role=ADMIN_ROLE,
            audit=self.audit.event(events.USER_DELETED, actor=actor, user_id=user_id),
        )
        if revoked is None:
            raise NotFoundError("No such user.")
        self.feed.announce(revoked)
        self.avatars.remove_avatar_image(user.avatar_url if user else None)
