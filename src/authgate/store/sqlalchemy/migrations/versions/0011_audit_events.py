"""audit events

The audit trail (``core.audit``): one append-only row per event, read newest first overall, by
user, by type and by time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("tenant_id", sa.String(length=32), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_audit_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_authgate_audit_events_user_id_id", "authgate_audit_events", ["user_id", "id"]
    )
    op.create_index("ix_authgate_audit_events_type_id", "authgate_audit_events", ["type", "id"])
    op.create_index("ix_authgate_audit_events_time", "authgate_audit_events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_authgate_audit_events_time", table_name="authgate_audit_events")
    op.drop_index("ix_authgate_audit_events_type_id", table_name="authgate_audit_events")
    op.drop_index("ix_authgate_audit_events_user_id_id", table_name="authgate_audit_events")
    op.drop_table("authgate_audit_events")
