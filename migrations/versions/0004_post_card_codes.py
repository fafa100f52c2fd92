"""One-time codes for a post card used online by anyone but its holder (hashed; 3 tries,
5 minutes; one payment).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:14:04.474835
"""

from alembic import op
import sqlalchemy as sa
import app.database


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('post_card_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_hash', sa.String(length=100), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('tries', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', app.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_post_card_codes_actor_id_users')),
    sa.ForeignKeyConstraint(['card_id'], ['post_cards.id'], name=op.f('fk_post_card_codes_card_id_post_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_card_codes'))
    )
    op.create_index('ix_post_card_codes_card_created', 'post_card_codes', ['card_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_post_card_codes_card_created', table_name='post_card_codes')
    op.drop_table('post_card_codes')
