"""sequential verdicts: how many jurors were convened and why convening stopped

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: every verdict before, and every verdict whose whole panel sits, has neither.
    with op.batch_alter_table('verdicts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('convened', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('convening_stop', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('verdicts', schema=None) as batch_op:
        batch_op.drop_column('convening_stop')
        batch_op.drop_column('convened')
