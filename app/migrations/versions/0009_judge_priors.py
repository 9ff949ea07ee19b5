"""judge priors: a calibrated judge's content-free prior, measured once, not in every process

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'judge_priors',
        sa.Column('key_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('judge', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('options', _JSON, nullable=False),
        sa.Column('prompt_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('prior', _JSON, nullable=False),
        sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key_digest'),
    )


def downgrade() -> None:
    op.drop_table('judge_priors')
