"""Officer queue: priority, flags, assignment, audit log, relay messages, prompts, blocks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:38:44.922321
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tips stored before this revision get defaults: normal priority, no flags, version 1.
    op.create_table(
        "officers",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "group_prompts",
        sa.Column("group_chat", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("officer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_chat", "message_id"),
    )
    with op.batch_alter_table("group_prompts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_prompts_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "sender_blocks",
        sa.Column("sender_tag", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("sender_tag"),
    )
    op.create_table(
        "tip_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("before", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("after", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tip_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_events_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "tip_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("officer_id", sa.BigInteger(), nullable=True),
        sa.Column("resident_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("group_message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resident_ref"),
    )
    with op.batch_alter_table("tip_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_messages_tip_id"), ["tip_id"], unique=False)

    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "priority",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="normal",
            )
        )
        batch_op.add_column(sa.Column("flags", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("sender_tag", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("assignee_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("assignee_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(sa.Column("claimed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("last_action", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("card_version", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_tips_priority"), ["priority"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_sender_tag"), ["sender_tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tips_sender_tag"))
        batch_op.drop_index(batch_op.f("ix_tips_priority"))
        batch_op.drop_column("pinned")
        batch_op.drop_column("card_version")
        batch_op.drop_column("last_action")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("assignee_name")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("sender_tag")
        batch_op.drop_column("flags")
        batch_op.drop_column("priority")

    with op.batch_alter_table("tip_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_messages_tip_id"))

    op.drop_table("tip_messages")
    with op.batch_alter_table("tip_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_events_tip_id"))

    op.drop_table("tip_events")
    op.drop_table("sender_blocks")
    with op.batch_alter_table("group_prompts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_prompts_tip_id"))

    op.drop_table("group_prompts")
    op.drop_table("officers")
