"""Model versions record the schema version they were trained for and the scheme of their signature.

Rows stored before this revision keep scheme 1 (the HMAC of the artifact bytes alone) and are refused
at load until ``registry.resign_legacy_versions`` (which needs the secret key, so it runs in the
application, not here) checks them with that scheme and signs them under scheme 2, which binds the
version id, setup, schema version, training data and metrics.

Revision ID: 0006_artifact_binding
Revises: 0005_used_signin_code
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_artifact_binding"
down_revision: str | Sequence[str] | None = "0005_used_signin_code"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("schema_version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("signature_scheme", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("model_version") as batch:
        batch.drop_column("signature_scheme")
        batch.drop_column("schema_version")
