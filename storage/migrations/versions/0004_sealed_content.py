"""Sealed content: data keys, tip words and places encrypted at rest, retention stamp.

The sealed columns become TEXT holding ``s:`` + base64. Rows stored plain by earlier versions
keep their values here; the bot seals them at its next start (storage.keys.reseal), since
the key is not the migration's to hold.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, type before, nullable)
SEALED: tuple[tuple[str, str, sa.types.TypeEngine[object], bool], ...] = (
    ("chat_states", "awaiting", sa.String(length=32), True),
    ("drafts", "data", sa.JSON(), False),
    ("tips", "place", sa.String(), True),
    ("tips", "latitude", sa.Float(), True),
    ("tips", "longitude", sa.Float(), True),
    ("tips", "text", sa.String(), False),
    ("tip_attachments", "file_id", sa.String(length=256), False),
    ("tip_attachments", "file_name", sa.String(length=256), True),
    ("tip_events", "detail", sa.String(), True),
    ("tip_messages", "text", sa.String(), False),
)


def _retype(to_text: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, column, before, nullable in SEALED:
        with op.batch_alter_table(table) as batch_op:
            if to_text:
                using = f"{column}::text" if postgres else None
                batch_op.alter_column(
                    column,
                    type_=sa.Text(),
                    existing_type=before,
                    existing_nullable=nullable,
                    postgresql_using=using,
                )
            else:
                using = f"{column}::{before.compile(op.get_bind().dialect)}" if postgres else None
                batch_op.alter_column(
                    column,
                    type_=before,
                    existing_type=sa.Text(),
                    existing_nullable=nullable,
                    postgresql_using=using,
                )


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tips") as batch_op:
        batch_op.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))
    _retype(to_text=True)


def downgrade() -> None:
    # Sealed values do not fit the old types: a downgrade needs an empty or plain database.
    _retype(to_text=False)
    with op.batch_alter_table("tips") as batch_op:
        batch_op.drop_column("purged_at")
    op.drop_table("data_keys")
