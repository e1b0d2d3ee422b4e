"""commit order without a counter row; sharded campaign counters; webhook leases

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 05:10:00

The global change_counter row serialized every change of the whole service
until its commit. The feed now pages by a key at least the writing transaction's id, under the
oldest running transaction (PostgreSQL) or by event id (SQLite, one writer at a
time). Campaign counters get shard rows so one send's unsubscribes do not wait
for each other. Webhook outbox rows get a lease, endpoints a failing-since date.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

FEED_KEY_DEFAULT = "pg_current_xact_id()::text::bigint"


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_key', sa.BigInteger(), nullable=True))
        batch_op.drop_constraint('uq_event_seq', type_='unique')
        batch_op.drop_column('seq')
        batch_op.create_index('ix_event_feed_key_id', ['feed_key', 'id'], unique=False)
        batch_op.create_index(
            'ix_event_subscriber_id_feed_key', ['subscriber_id', 'feed_key'], unique=False
        )
    if postgres:
        # Events written before this revision are committed: they sort first, by id.
        op.execute("UPDATE event SET feed_key = 0")
        op.execute(f"ALTER TABLE event ALTER COLUMN feed_key SET DEFAULT {FEED_KEY_DEFAULT}")
    op.drop_table('change_counter')

    with op.batch_alter_table('campaign_stats', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('shard', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_constraint('pk_campaign_stats', type_='primary')
        batch_op.create_primary_key('pk_campaign_stats', ['campaign_id', 'shard'])
    with op.batch_alter_table('campaign_stats', schema=None) as batch_op:
        batch_op.alter_column('shard', server_default=None)

    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('leased_until')
    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.drop_column('failing_since')

    op.execute(
        "DELETE FROM campaign_stats WHERE shard <> 0"
    )  # lossy: shard totals are not folded back
    with op.batch_alter_table('campaign_stats', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('pk_campaign_stats', type_='primary')
        batch_op.drop_column('shard')
        batch_op.create_primary_key('pk_campaign_stats', ['campaign_id'])

    op.create_table(
        'change_counter',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_change_counter')),
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_subscriber_id_feed_key')
        batch_op.drop_index('ix_event_feed_key_id')
        batch_op.drop_column('feed_key')
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint('uq_event_seq', ['seq'])
