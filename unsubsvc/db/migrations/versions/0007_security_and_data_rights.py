"""security and data rights: admin sessions and lockout, audit log, erased addresses

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00

Admin sign-ins become server-side session rows (logout and revocation end them);
accounts count wrong passwords and lock; an append-only audit log; erased
addresses kept only as keyed hashes; webhook secrets widened to hold ciphertext.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))

    op.create_table('admin_session',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['admin_user.id'], name=op.f('fk_admin_session_admin_id_admin_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_admin_session'))
    )
    with op.batch_alter_table('admin_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_session_admin_id'), ['admin_id'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_occurred_at', ['occurred_at'], unique=False)

    op.create_table('erased_address',
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address_hash', name=op.f('pk_erased_address'))
    )

    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=100), type_=sa.String(length=500), existing_nullable=False)


def downgrade():
    with op.batch_alter_table('webhook', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=500), type_=sa.String(length=100), existing_nullable=False)
    op.drop_table('erased_address')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_occurred_at')
    op.drop_table('audit_event')
    with op.batch_alter_table('admin_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_session_admin_id'))
    op.drop_table('admin_session')
    with op.batch_alter_table('admin_user', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
