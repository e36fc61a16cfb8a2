"""tenants, memberships and API tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:58:46.124036
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authgate_tenants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("personal_owner_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["personal_owner_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_tenants_personal_owner_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_tenants")),
        sa.UniqueConstraint(
            "personal_owner_id", name=op.f("uq_authgate_tenants_personal_owner_id")
        ),
    )
    op.create_table(
        "authgate_api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["authgate_tenants.id"],
            name=op.f("fk_authgate_api_tokens_tenant_id_authgate_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_api_tokens_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authgate_api_tokens")),
    )
    with op.batch_alter_table("authgate_api_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_api_tokens_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authgate_api_tokens_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "authgate_memberships",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["authgate_tenants.id"],
            name=op.f("fk_authgate_memberships_tenant_id_authgate_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["authgate_users.id"],
            name=op.f("fk_authgate_memberships_user_id_authgate_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_authgate_memberships")),
    )
    with op.batch_alter_table("authgate_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authgate_memberships_user_id"), ["user_id"], unique=False
        )
    _give_existing_users_a_personal_tenant()


def _give_existing_users_a_personal_tenant() -> None:
    conn = op.get_bind()
    users = conn.execute(sa.text("SELECT id, created_at FROM authgate_users")).all()
    for user_id, created_at in users:
        tenant_id = secrets.token_hex(12)
        conn.execute(
            sa.text(
                "INSERT INTO authgate_tenants (id, name, personal_owner_id, created_at) "
                "VALUES (:id, 'Personal', :user_id, :created_at)"
            ),
            {"id": tenant_id, "user_id": user_id, "created_at": created_at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO authgate_memberships (tenant_id, user_id, role, created_at) "
                "VALUES (:tenant_id, :user_id, 'owner', :created_at)"
            ),
            {"tenant_id": tenant_id, "user_id": user_id, "created_at": created_at},
        )


def downgrade() -> None:
    with op.batch_alter_table("authgate_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_memberships_user_id"))

    op.drop_table("authgate_memberships")
    with op.batch_alter_table("authgate_api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authgate_api_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_authgate_api_tokens_tenant_id"))

    op.drop_table("authgate_api_tokens")
    op.drop_table("authgate_tenants")
