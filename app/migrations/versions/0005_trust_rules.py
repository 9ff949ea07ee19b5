"""the rule chosen by evidence per category: verdict source and guaranteed-risk threshold

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('trust_proposals', 'weights_versions')


def _rules() -> sa.Column[Any]:
    # Rows from before: no rule chosen, every category keeps the judge and has no threshold.
    return sa.Column(
        'rules',
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
        server_default=sa.text("'{}'"),
        nullable=False,
    )


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(_rules())


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('rules')
