"""Roles (seeds 001, 002): the built-in roles, read-only, and the account's custom roles made of
permissions. Nobody can grant a permission they do not hold, so no role edit is an escalation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import Account, Role, User, public_id
from app.services import audit
from app.services.permissions import (
    IMPLIED_PERMISSIONS,
    PERMISSION_LABELS,
    Actor,
    Permission,
    format_permissions,
    parse_permissions,
    require,
)

NAME_MAX = 100
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class RoleInfo:
    role: Role
    permissions: frozenset[Permission]
    # Users of the caller's account holding the role, whatever their status.
    users: int


@dataclass(frozen=True)
class RolePage:
    rows: list[RoleInfo]
    total: int


@dataclass(frozen=True)
class RoleRow:
    """One role as the Roles page shows it."""

    id: str = ""
    name: str = ""
    builtin: bool = False
    permission_labels: list[str] = field(default_factory=list)
    # The permissions' values, in the order of Permission.
    permissions: list[str] = field(default_factory=list)
    users: int = 0
    # The actor may edit or delete it (custom, and within their own permissions).
    editable: bool = False


@dataclass(frozen=True)
class PermissionOption:
    value: str = ""
    label: str = ""
    # The actor holds it, so may grant it.
    held: bool = False


@dataclass(frozen=True)
class RolesView:
    rows: list[RoleRow]
    page_number: int
    has_next: bool
    options: list[PermissionOption]


def roles_view(session: Session, actor: Actor, page_number: int = 1, *, page_size: int = 25) -> RolesView:
    """Page `page_number` of the Roles page (the last page when that one is now empty), and the
    permissions the editor offers."""
    result = list_roles(session, actor, offset=(page_number - 1) * page_size, limit=page_size)
    if not result.rows and page_number > 1:
        page_number = max(1, -(-result.total // page_size))
        result = list_roles(session, actor, offset=(page_number - 1) * page_size, limit=page_size)
    rows = [_row(actor, info) for info in result.rows]
    options = [PermissionOption(value=p.value, label=PERMISSION_LABELS[p], held=actor.can(p)) for p in Permission]
    return RolesView(
        rows=rows, page_number=page_number, has_next=page_number * page_size < result.total, options=options
    )


def _row(actor: Actor, info: RoleInfo) -> RoleRow:
    held = [p for p in Permission if p in info.permissions]
    return RoleRow(
        id=str(info.role.id),
        name=info.role.name,
        builtin=info.role.builtin,
        permission_labels=[PERMISSION_LABELS[p] for p in held],
        permissions=[p.value for p in held],
        users=info.users,
        editable=not info.role.builtin and within(actor, info.permissions),
    )


def role_row(session: Session, actor: Actor, role_id: int) -> RoleRow:
    """One role as the editor opens it."""
    return _row(actor, get_role(session, actor, role_id))


def role_permissions(role: Role) -> frozenset[Permission]:
    return parse_permissions(role.permissions)


def within(actor: Actor, permissions: frozenset[Permission]) -> bool:
    return permissions <= actor.permissions


def _visible(account_id: int):
    return or_(col(Role.builtin) == True, col(Role.account_id) == account_id)  # noqa: E712


def lock_account(session: Session, account_id: int) -> None:
    """Serialize changes to an account's team and roles (seat counts, last owner, roles in use).
    A row lock on PostgreSQL; SQLite transactions already take the write lock up front."""
    session.exec(select(Account.id).where(Account.id == account_id).with_for_update()).one()


def role_for_account(session: Session, account_id: int, role_id: int) -> Role:
    """A built-in role or one of the account's custom roles; another account's role is not found."""
    role = session.exec(select(Role).where(Role.id == role_id, _visible(account_id))).first()
    if role is None:
        raise NotFound("That role does not exist.")
    return role


def _user_counts(session: Session, account_id: int, role_ids: list[int]) -> dict[int, int]:
    if not role_ids:
        return {}
    return dict(
        session.exec(
            select(col(User.role_id), func.count(col(User.id)))
            .where(User.account_id == account_id, col(User.role_id).in_(role_ids))
            .group_by(col(User.role_id))
        ).all()
    )


def _info(session: Session, account_id: int, roles: list[Role]) -> list[RoleInfo]:
    counts = _user_counts(session, account_id, [_id(r) for r in roles])
    return [RoleInfo(role=r, permissions=role_permissions(r), users=counts.get(_id(r), 0)) for r in roles]


def _id(role: Role) -> int:
    assert role.id is not None, "a role read from the database has an id"
    return role.id


def list_roles(session: Session, actor: Actor, *, offset: int = 0, limit: int = 25) -> RolePage:
    """Built-in roles first (Owner, Admin, Member), then custom roles by name."""
    require(actor, Permission.ROLES_MANAGE)
    if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
        raise ValidationFailed(f"A page holds 1 to {MAX_PAGE_SIZE} rows.")
    total = session.exec(select(func.count(col(Role.id))).where(_visible(actor.account_id))).one()
    # Built-in roles in the order of their power, not alphabetically.
    key = col(Role.key)
    power = case((key == "owner", 0), (key == "admin", 1), (key == "member", 2), else_=3)
    query = (
        select(Role)
        .where(_visible(actor.account_id))
        .order_by(col(Role.builtin).desc(), power, func.lower(Role.name), col(Role.id))
        .offset(offset)
        .limit(limit)
    )
    roles = list(session.exec(query))
    return RolePage(rows=_info(session, actor.account_id, roles), total=total)


def get_role(session: Session, actor: Actor, role_id: int) -> RoleInfo:
    require(actor, Permission.ROLES_MANAGE)
    return _info(session, actor.account_id, [role_for_account(session, actor.account_id, role_id)])[0]


def _clean_name(session: Session, account_id: int, name: str, *, exclude_id: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("Enter a name for the role.", field="name")
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"Use at most {NAME_MAX} characters.", field="name")
    query = select(Role.id).where(_visible(account_id), func.lower(Role.name) == name.lower())
    if exclude_id is not None:
        query = query.where(Role.id != exclude_id)
    if session.exec(query).first() is not None:
        raise Conflict(f"A role named {name} already exists.", field="name")
    return name


def _clean_permissions(actor: Actor, permissions: Iterable[str]) -> frozenset[Permission]:
    known = {p.value for p in Permission}
    chosen = set(permissions)
    if unknown := chosen - known:
        raise ValidationFailed(f"Unknown permission: {', '.join(sorted(unknown))}.", field="permissions")
    # Everyone sees Info (DESIGN.md §6), and changing something implies seeing it.
    granted = {Permission(p) for p in chosen} | {Permission.INFO_VIEW}
    result = frozenset(granted | {IMPLIED_PERMISSIONS[p] for p in granted if p in IMPLIED_PERMISSIONS})
    if not within(actor, result):
        missing = ", ".join(PERMISSION_LABELS[p] for p in sorted(result - actor.permissions))
        raise PermissionDenied(f"You cannot grant permissions you do not hold: {missing}.", field="permissions")
    return result


def _custom(session: Session, actor: Actor, role_id: int) -> Role:
    """One of the account's custom roles that the actor may change."""
    role = role_for_account(session, actor.account_id, role_id)
    if role.builtin:
        raise PermissionDenied("Built-in roles cannot be changed.")
    if not within(actor, role_permissions(role)):
        raise PermissionDenied(f"The role {role.name} has permissions you do not hold; ask an owner to change it.")
    return role


def create_role(session: Session, actor: Actor, *, name: str, permissions: Iterable[str]) -> Role:
    require(actor, Permission.ROLES_MANAGE)
    chosen = _clean_permissions(actor, permissions)
    role = Role(
        account_id=actor.account_id,
        key=public_id("custom").lower(),
        name=_clean_name(session, actor.account_id, name),
        permissions=format_permissions(chosen),
        builtin=False,
    )
    session.add(role)
    session.flush()
    audit.record(session, actor, "role.create", f"Created the role “{role.name}” ({role.permissions})")
    return role


def update_role(session: Session, actor: Actor, role_id: int, *, name: str, permissions: Iterable[str]) -> Role:
    """Rename a custom role and set its permissions; its users get them on their next action."""
    require(actor, Permission.ROLES_MANAGE)
    role = _custom(session, actor, role_id)
    chosen = _clean_permissions(actor, permissions)
    role.name = _clean_name(session, actor.account_id, name, exclude_id=role.id)
    role.permissions = format_permissions(chosen)
    session.add(role)
    session.flush()
    audit.record(session, actor, "role.update", f"Changed the role “{role.name}” ({role.permissions})")
    return role


def deletion_blocker(session: Session, actor: Actor, role_id: int) -> str:
    """Why the role cannot be deleted ("" when it can)."""
    require(actor, Permission.ROLES_MANAGE)
    role = _custom(session, actor, role_id)
    users = _user_counts(session, actor.account_id, [_id(role)]).get(_id(role), 0)
    if users:
        holders = "1 user has" if users == 1 else f"{users} users have"
        return f"{holders} the role {role.name}. Move them to another role on the Team page first."
    return ""


def delete_role(session: Session, actor: Actor, role_id: int) -> str:
    """Delete an unused custom role; returns its name."""
    require(actor, Permission.ROLES_MANAGE)
    # Not while an invitation or a role change gives the role to someone.
    lock_account(session, actor.account_id)
    role = _custom(session, actor, role_id)
    if blocker := deletion_blocker(session, actor, role_id):
        raise Conflict(blocker)
    name = role.name
    session.delete(role)
    session.flush()
    audit.record(session, actor, "role.delete", f"Deleted the role “{name}”")
    return name
