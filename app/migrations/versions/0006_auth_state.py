"""auth state: the moment keys first existed, so that local mode never reopens by accident

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'auth_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('keys_since', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    # A database that already has keys (revoked ones too) has had them since its first one.
    op.execute(
        'INSERT INTO auth_state (id, keys_since) '
        'SELECT 1, created_at FROM api_keys ORDER BY created_at LIMIT 1'
    )


def downgrade() -> None:
    op.drop_table('auth_state')
