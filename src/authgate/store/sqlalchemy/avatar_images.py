"""Avatar images in SQL (mixed into ``SqlAlchemyStore``); see
``store.protocols.AvatarImageStore``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from authgate.store.records import AvatarImageRecord, AvatarImageTag
from authgate.store.sqlalchemy.models import AvatarImageRow
from authgate.store.sqlalchemy.store_core import StoreCore

_GET_IMAGE = select(
    AvatarImageRow.name, AvatarImageRow.data, AvatarImageRow.content_type, AvatarImageRow.digest
).where(AvatarImageRow.name == bindparam("name"))
# A revalidation reads the tag only: the data column is never fetched (nor, for a large value
# stored out of line, read from disk).
_GET_TAG = select(AvatarImageRow.name, AvatarImageRow.content_type, AvatarImageRow.digest).where(
    AvatarImageRow.name == bindparam("name")
)


class AvatarImageStoreMixin:
    def put_avatar_image(self: StoreCore, image: AvatarImageRecord, *, now: datetime) -> bool:
        row = AvatarImageRow(
            name=image.name,
            content_type=image.content_type,
            digest=image.digest,
            data=image.data,
            created_at=now,
        )
        try:
            with self._transaction() as db:
                db.add(row)
        except IntegrityError:
            return False
        return True

    def get_avatar_image(self: StoreCore, name: str) -> AvatarImageRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET_IMAGE, {"name": name}).first()
        if row is None:
            return None
        return AvatarImageRecord(
            name=row.name, data=bytes(row.data), content_type=row.content_type, digest=row.digest
        )

    def get_avatar_image_tag(self: StoreCore, name: str) -> AvatarImageTag | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET_TAG, {"name": name}).first()
        if row is None:
            return None
        return AvatarImageTag(name=row.name, content_type=row.content_type, digest=row.digest)

    def delete_avatar_image(self: StoreCore, name: str) -> bool:
        with self._transaction() as db:
            result = db.execute(delete(AvatarImageRow).where(AvatarImageRow.name == name))
        return bool(result.rowcount)  # type: ignore[attr-defined]
