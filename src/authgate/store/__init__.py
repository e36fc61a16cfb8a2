"""What the service needs from storage, as small protocols, and the records they exchange."""

from authgate.store.protocols import RevocationLog, SessionStore, Store, UserStore
from authgate.store.records import (
    RefreshOutcome,
    RevocationEvent,
    SessionRecord,
    UserRecord,
    UserStatus,
)

__all__ = [
    "RefreshOutcome",
    "RevocationEvent",
    "RevocationLog",
    "SessionRecord",
    "SessionStore",
    "Store",
    "UserRecord",
    "UserStatus",
    "UserStore",
]
