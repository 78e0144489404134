"""web UI: user passwords and e-mail, token users, model owner and team, approval requests,
model health summary, shared server secrets

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


#: The series index before and after: 0007 makes it cover what the UI's plots read.
_SERIES_BEFORE = ["model_name", "metric", "feature", "window_end"]
_SERIES_AFTER = [*_SERIES_BEFORE, "value", "flagged", "threshold", "run_id"]


def _series_index(columns: list[str]) -> None:
    with op.batch_alter_table("monitoring_results", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_results_series")
        batch_op.create_index("ix_monitoring_results_series", columns, unique=False)


def upgrade() -> None:
    _series_index(_SERIES_AFTER)
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["model_name"], ["models.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.create_index("ix_approval_requests_status", ["status", "model_name"], unique=False)

    op.create_table(
        "model_health",
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("features", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("performance", sa.JSON(), nullable=False),
        sa.Column("label_coverage", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user", sa.String(length=128), nullable=True))
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        # existing models belong to no team
        batch_op.add_column(
            sa.Column("team", sa.String(length=128), nullable=False, server_default=sa.text("''"))
        )
        batch_op.create_index("ix_models_team", ["team"], unique=False)


def downgrade() -> None:
    _series_index(_SERIES_BEFORE)
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index("ix_models_team")
        batch_op.drop_column("team")
        batch_op.drop_column("owner")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("user")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email")
        batch_op.drop_column("password_hash")
    op.drop_table("server_secrets")
    op.drop_table("model_health")
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_requests_status")
    op.drop_table("approval_requests")
