"""Tips, their attachments and sealed contact links, drafts, chat state, throttles.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 07:22:24.716454
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_states",
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("awaiting", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_key"),
    )
    op.create_table(
        "drafts",
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_key"),
    )
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drafts_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "throttles",
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chat_key", "scope"),
    )
    op.create_table(
        "tips",
        sa.Column("ward_code", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "dealing",
                "use",
                "den",
                "psychosis",
                "plants",
                "disguised",
                "driving",
                "school",
                "other",
                name="category",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("area", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new",
                "acknowledged",
                "verifying",
                "referred",
                "resolved",
                "unfounded",
                "duplicate",
                "spam",
                name="tipstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("receipt_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attachment_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("card_message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_hash"),
    )
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tips_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_ward_code"), ["ward_code"], unique=False)

    op.create_table(
        "contact_links",
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tip_id"),
    )
    op.create_table(
        "tip_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "photo",
                "video",
                "voice",
                "audio",
                "document",
                name="attachmentkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("file_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("mime_type", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("posted_message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tip_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_attachments_tip_id"), ["tip_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tip_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_attachments_tip_id"))

    op.drop_table("tip_attachments")
    op.drop_table("contact_links")
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tips_ward_code"))
        batch_op.drop_index(batch_op.f("ix_tips_status"))
        batch_op.drop_index(batch_op.f("ix_tips_created_at"))
        batch_op.drop_index(batch_op.f("ix_tips_category"))

    op.drop_table("tips")
    op.drop_table("throttles")
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drafts_updated_at"))

    op.drop_table("drafts")
    op.drop_table("chat_states")
