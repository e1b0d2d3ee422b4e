"""recipient experience: branding, languages, topic descriptions, outgoing mail, single-use links

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 14:30:00

Lists get branding and a default language; topics a description; subscribers
a chosen language. unsubsvc's own mail (sign-in links, resubscribe
confirmations) goes through a durable outbox; single-use links keep the nonce
of each followed link until it would have expired anyway.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_locale', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('brand_color', sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column('brand_sender_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('brand_footer', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('brand_privacy_url', sa.String(length=2000), nullable=True))

    with op.batch_alter_table('topic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))

    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))

    op.create_table('list_logo',
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_list_logo_list_id_mailing_list'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', name=op.f('pk_list_logo'))
    )

    op.create_table('outgoing_mail',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subscriber_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('message', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_outgoing_mail_subscriber_id_subscriber'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_mail'))
    )
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.create_index('ix_outgoing_mail_due', ['sent_at', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_mail_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('used_link',
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('nonce_hash', name=op.f('pk_used_link'))
    )
    with op.batch_alter_table('used_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_link_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('used_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_link_expires_at'))
    op.drop_table('used_link')
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_subscriber_id'))
        batch_op.drop_index('ix_outgoing_mail_due')
    op.drop_table('outgoing_mail')
    op.drop_table('list_logo')
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('topic', schema=None) as batch_op:
        batch_op.drop_column('description')
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.drop_column('brand_privacy_url')
        batch_op.drop_column('brand_footer')
        batch_op.drop_column('brand_sender_name')
        batch_op.drop_column('brand_color')
        batch_op.drop_column('default_locale')
