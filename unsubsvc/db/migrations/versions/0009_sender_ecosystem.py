"""sender ecosystem: webhook secret rotation, ESP events recorded once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:10:00

A rotated webhook keeps its previous secret for a while, so deliveries can be
signed with both (Standard Webhooks). ESP events (SES, SendGrid, Postmark,
Mailgun) are recorded once per provider event id. A subscription records when
bounces suppressed it and when that was last cleared.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('bounce_cleared_at', sa.DateTime(timezone=True), nullable=True))

    op.create_table('esp_event_seen',
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'event_id', name=op.f('pk_esp_event_seen'))
    )
    with op.batch_alter_table('esp_event_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_esp_event_seen_received_at'), ['received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('esp_event_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_esp_event_seen_received_at'))
    op.drop_table('esp_event_seen')

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_column('bounce_cleared_at')
        batch_op.drop_column('bounced_at')

    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_until')
        batch_op.drop_column('previous_secret')
