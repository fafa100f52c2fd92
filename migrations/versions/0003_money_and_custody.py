"""Money and custody: refund requests a supervisor approves, exchange rates a second
person confirms, duty and fees paid ahead credited against customs, the receiver's
identity document and out-of-sequence scans, sign-up codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:10:35.945390
"""

from alembic import op
import sqlalchemy as sa
import app.database


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pending_registrations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=5), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('expires_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_registrations')),
    sa.UniqueConstraint('token', name=op.f('uq_pending_registrations_token'))
    )
    op.create_index(op.f('ix_pending_registrations_expires_at'), 'pending_registrations', ['expires_at'], unique=False)
    op.create_table('exchange_rate_proposals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('base', sa.String(length=3), nullable=False),
    sa.Column('quote', sa.String(length=3), nullable=False),
    sa.Column('rate', sa.Numeric(precision=20, scale=8), nullable=False),
    sa.Column('current_rate', sa.Numeric(precision=20, scale=8), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('proposed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('proposed_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', app.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rate_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_exchange_rate_proposals_decided_by_id_users')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id'], name=op.f('fk_exchange_rate_proposals_proposed_by_id_users')),
    sa.ForeignKeyConstraint(['rate_id'], ['exchange_rates.id'], name=op.f('fk_exchange_rate_proposals_rate_id_exchange_rates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_rate_proposals'))
    )
    op.create_index(op.f('ix_exchange_rate_proposals_status'), 'exchange_rate_proposals', ['status'], unique=False)
    op.create_table('payment_refund_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('needs', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('requested_office_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('requested_at', app.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', app.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=300), nullable=False),
    sa.Column('refund_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_payment_refund_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_refund_requests_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['payment_refunds.id'], name=op.f('fk_payment_refund_requests_refund_id_payment_refunds')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_payment_refund_requests_requested_by_id_users')),
    sa.ForeignKeyConstraint(['requested_office_id'], ['post_offices.id'], name=op.f('fk_payment_refund_requests_requested_office_id_post_offices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_refund_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payment_refund_requests_idempotency_key'))
    )
    op.create_index(op.f('ix_payment_refund_requests_payment_id'), 'payment_refund_requests', ['payment_id'], unique=False)
    op.create_index(op.f('ix_payment_refund_requests_status'), 'payment_refund_requests', ['status'], unique=False)
    op.add_column('customs_cases', sa.Column('prepaid_iqd', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))
    op.add_column('parcel_events', sa.Column('receiver_id_number', sa.String(length=40), nullable=True))
    op.add_column('parcel_events', sa.Column('out_of_sequence', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('parcels', sa.Column('customs_prepaid_duty_iqd', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))
    op.add_column('parcels', sa.Column('customs_prepaid_fees_iqd', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))
    op.add_column('shop_buy_requests', sa.Column('customs_fees', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))
    op.add_column('shop_consignments', sa.Column('customs_fees', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))
    op.add_column('shop_orders', sa.Column('customs_fees', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False, server_default='0'))


def downgrade() -> None:
    op.drop_column('shop_orders', 'customs_fees')
    op.drop_column('shop_consignments', 'customs_fees')
    op.drop_column('shop_buy_requests', 'customs_fees')
    op.drop_column('parcels', 'customs_prepaid_fees_iqd')
    op.drop_column('parcels', 'customs_prepaid_duty_iqd')
    op.drop_column('parcel_events', 'out_of_sequence')
    op.drop_column('parcel_events', 'receiver_id_number')
    op.drop_column('customs_cases', 'prepaid_iqd')
    op.drop_index(op.f('ix_payment_refund_requests_status'), table_name='payment_refund_requests')
    op.drop_index(op.f('ix_payment_refund_requests_payment_id'), table_name='payment_refund_requests')
    op.drop_table('payment_refund_requests')
    op.drop_index(op.f('ix_exchange_rate_proposals_status'), table_name='exchange_rate_proposals')
    op.drop_table('exchange_rate_proposals')
    op.drop_index(op.f('ix_pending_registrations_expires_at'), table_name='pending_registrations')
    op.drop_table('pending_registrations')
