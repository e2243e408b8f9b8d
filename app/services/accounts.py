"""Accounts, their built-in roles, their users, and the people those users are."""

from __future__ import annotations

from sqlmodel import Session, select

from app.errors import Conflict, ValidationFailed
from app.models import Account, Person, Role, User
from app.services.passwords import check_new_password, hash_password
from app.services.permissions import BUILTIN_ROLES, format_permissions


def normalize_email(email: str) -> str:
    return email.strip().lower()


def ensure_builtin_roles(session: Session) -> dict[str, Role]:
    """Built-in roles are shared rows without an account; their permissions follow the code."""
    existing = {r.key: r for r in session.exec(select(Role).where(Role.builtin == True))}  # noqa: E712
    for key, (name, permissions) in BUILTIN_ROLES.items():
        role = existing.get(key)
        if role is None:
            role = Role(key=key, name=name, builtin=True)
            existing[key] = role
        role.name = name
        role.permissions = format_permissions(permissions)
        session.add(role)
    session.flush()
    return existing


def builtin_role(session: Session, key: str) -> Role:
    role = session.exec(select(Role).where(Role.builtin == True, Role.key == key)).first()  # noqa: E712
    if role is None:
        role = ensure_builtin_roles(session)[key]
    return role


def create_account(session: Session, *, name: str, timezone: str = "UTC") -> Account:
    if not name.strip():
        raise ValidationFailed("Enter the company name.", field="name")
    account = Account(name=name.strip(), timezone=timezone)
    session.add(account)
    session.flush()
    return account


def person_by_email(session: Session, email: str) -> Person | None:
    return session.exec(select(Person).where(Person.email == normalize_email(email))).first()


def person_of(session: Session, user: User) -> Person:
    return session.get_one(Person, user.person_id)


def create_user(
    session: Session,
    *,
    account: Account,
    email: str,
    full_name: str,
    role: Role,
    password: str | None,
    status: str = "active",
) -> User:
    """A user of `account`: a membership of the person with this email, who is created when new.
    An existing person keeps their password and name (`password` must then be None: nobody
    chooses another's password)."""
    email = normalize_email(email)
    assert account.id is not None and role.id is not None  # stored rows
    if session.exec(select(User).where(User.account_id == account.id, User.email == email)).first() is not None:
        raise Conflict("A user with this email already exists.", field="email")
    person = person_by_email(session, email)
    if person is None:
        person = Person(email=email, full_name=full_name.strip())
    elif password is not None:
        raise Conflict("A user with this email already exists.", field="email")
    if password is not None:
        check_new_password(password, email)
        person.password_hash = hash_password(password)
    session.add(person)
    session.flush()
    assert person.id is not None  # flushed
    user = User(
        account_id=account.id,
        role_id=role.id,
        person_id=person.id,
        email=email,
        full_name=full_name.strip(),
        status=status,
    )
    session.add(user)
    session.flush()
    return user
