"""people and memberships: one person (email, password, name, picture) can be a user of several
accounts; user.email is unique per account; sign-up verification links keep the chosen password;
accounts can hide the getting-started list

Revision ID: 20261204_people
Revises: 20261204_account_scoped_uniques
Create Date: 2026-12-04 17:30:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '20261204_people'
down_revision: str | Sequence[str] | None = '20261204_account_scoped_uniques'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _public_id() -> str:
    return "per_" + "".join(_ALPHABET[byte & 31] for byte in secrets.token_bytes(12))


def _without_sqlite_foreign_keys(change) -> None:
    """SQLite changes a constraint by copying the table and dropping the old one, which its
    foreign-key check refuses while other tables reference `user`; the check can only be turned
    off between transactions, so this migration ends the current one, and checks the keys after."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        change()
        return
    op.execute('COMMIT')
    op.execute('PRAGMA foreign_keys=OFF')
    op.execute('BEGIN IMMEDIATE')
    change()
    broken = bind.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if broken:
        raise RuntimeError(f'foreign keys broken by the migration: {broken}')
    op.execute('COMMIT')
    op.execute('PRAGMA foreign_keys=ON')
    op.execute('BEGIN IMMEDIATE')


def upgrade() -> None:
    op.create_table(
        'person',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('picture_path', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('last_user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
        sa.UniqueConstraint('email', name=op.f('uq_person_email')),
        sa.UniqueConstraint('public_id', name=op.f('uq_person_public_id')),
    )
    op.add_column('user', sa.Column('person_id', sa.Integer(), nullable=True))
    op.add_column('account', sa.Column('getting_started_dismissed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column(
        'user_token',
        sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False, server_default=''),
    )

    # Every existing user becomes a person of their own (emails were unique across accounts).
    bind = op.get_bind()
    users = bind.execute(
        sa.text('SELECT id, email, full_name, password_hash, picture_path, created_at FROM "user" ORDER BY id')
    ).all()
    for user_id, email, full_name, password_hash, picture_path, created_at in users:
        person_id = bind.execute(
            sa.text(
                'INSERT INTO person (public_id, email, full_name, password_hash, picture_path, last_user_id, created_at)'
                ' VALUES (:public_id, :email, :full_name, :password_hash, :picture_path, :user_id, :created_at)'
                ' RETURNING id'
            ),
            {
                'public_id': _public_id(),
                'email': email,
                'full_name': full_name,
                'password_hash': password_hash,
                'picture_path': picture_path,
                'user_id': user_id,
                'created_at': created_at,
            },
        ).scalar_one()
        bind.execute(sa.text('UPDATE "user" SET person_id = :person_id WHERE id = :id'), {'person_id': person_id, 'id': user_id})

    def change() -> None:
        with op.batch_alter_table('user', schema=None) as batch_op:
            batch_op.alter_column('person_id', existing_type=sa.Integer(), nullable=False)
            batch_op.create_index(batch_op.f('ix_user_person_id'), ['person_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_user_person_id_person'), 'person', ['person_id'], ['id'])
            batch_op.drop_constraint('uq_user_email', type_='unique')
            batch_op.create_unique_constraint('uq_user_account_id_email', ['account_id', 'email'])
            batch_op.drop_column('password_hash')
            batch_op.drop_column('picture_path')

    _without_sqlite_foreign_keys(change)


def downgrade() -> None:
    # Only possible while every person is a user of one account (emails become unique again).
    def change() -> None:
        with op.batch_alter_table('user', schema=None) as batch_op:
            batch_op.add_column(sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False, server_default=''))
            batch_op.add_column(sa.Column('picture_path', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False, server_default=''))
        op.execute(
            'UPDATE "user" SET password_hash = (SELECT password_hash FROM person WHERE person.id = "user".person_id),'
            ' picture_path = (SELECT picture_path FROM person WHERE person.id = "user".person_id)'
        )
        with op.batch_alter_table('user', schema=None) as batch_op:
            batch_op.drop_constraint('uq_user_account_id_email', type_='unique')
            batch_op.create_unique_constraint('uq_user_email', ['email'])
            batch_op.drop_constraint('fk_user_person_id_person', type_='foreignkey')
            batch_op.drop_index(batch_op.f('ix_user_person_id'))
            batch_op.drop_column('person_id')

    _without_sqlite_foreign_keys(change)
    op.drop_table('person')
    op.execute('ALTER TABLE account DROP COLUMN getting_started_dismissed_at')
    op.execute('ALTER TABLE user_token DROP COLUMN password_hash')
