"""Accounts: registration, one's own profile and password, and the administration of users."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from authgate.core.account_tokens import hash_account_token
from authgate.core.passwords import find_password_problem
from authgate.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    StoreUnavailableError,
    TokenRevokedError,
    ValidationFailedError,
)
from authgate.service.principals import ADMIN_ROLE, DEFAULT_ROLES, Principal
from authgate.store.records import RevocationKind, UserRecord, UserStatus

if TYPE_CHECKING:
    from authgate.backends.login_throttle import LoginThrottle
    from authgate.backends.revocation_feed import RevocationFeed
    from authgate.core.clocks import Clock
    from authgate.core.passwords import PasswordHasher
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
        """Throttled like a login: a stolen session must not become a password oracle."""
        session_id = self.authorization.require_session(principal)
        user = self.store.get_user(principal.user.id)
        if user is None or user.password_hash is None:
            raise TokenRevokedError()
        attempt = f"user:{user.id}"
        self.throttle.begin_attempt(attempt, ip)
        if not self.hasher.verify_password(current, user.password_hash).ok:
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
        """Set roles/status; takes effect on the user's very next request, in every process."""
        self.authorization.require_admin(actor)
        removes_own_admin = roles is not None and ADMIN_ROLE not in roles
        if user_id == actor.user.id and (removes_own_admin or status is UserStatus.DISABLED):
            raise ForbiddenError(
                "You cannot disable yourself or remove your own admin role; ask another admin."
            )
        return self.set_user_access(user_id, roles=roles, status=status)

    def set_user_access(
        self, user_id: str, *, roles: Sequence[str] | None, status: UserStatus | None
    ) -> UserRecord:
        """Operator-level change (CLI, admin API after its checks), announced to every process."""
        result = self.store.update_access(user_id, roles=roles, status=status, now=self.clock.now())
        if result is None:
            raise NotFoundError("No such user.")
        updated, revoked = result
        self.feed.announce(revoked)
        return updated

    def delete_user(self, actor: Principal, user_id: str) -> None:
        self.authorization.require_admin(actor)
        if user_id == actor.user.id:
            raise ForbiddenError("You cannot delete your own account here; ask another admin.")
        if self.store.sole_owned_tenants(user_id):
            raise ConflictError(
                "This user is the only owner of a shared tenant; make someone else owner first."
            )
        user = self.store.get_user(user_id)
        revoked = self.store.delete_user(user_id, now=self.clock.now())
        if revoked is None:
            raise NotFoundError("No such user.")
        self.feed.announce(revoked)
        self.avatars.remove_avatar_file(user.avatar_url if user else None)
