"""Team (seeds 000, 001, 002): invite users by email, resend and revoke invitations, block,
unblock, remove, change roles.

The rules, all enforced here:
- an invitation or an unblock needs a free seat; active and invited users use seats;
- nobody changes their own role, blocks or removes themselves, or acts on a user whose role
  holds permissions they do not hold, or gives a role with permissions they do not hold;
- the account keeps at least one active Owner;
- blocking ends the user's sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import ApiKey, AuthSession, Payment, Person, Role, User, UserToken
from app.services import audit, auth
from app.services import product_catalogue as catalogue
from app.services.accounts import create_user, normalize_email
from app.services.customers import account_of
from app.services.permissions import Actor, Permission, require
from app.services.plans import Plan, get_plan
from app.services.product_catalogue import active_codes
from app.services.roles import lock_account, role_for_account, role_permissions, within
from app.services.timefmt import format_day

SEAT_STATUSES = ("active", "invited")
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Seats:
    used: int
    # None: the plan does not limit seats.
    limit: int | None

    @property
    def free(self) -> bool:
        return self.limit is None or self.used < self.limit


@dataclass(frozen=True)
class Member:
    user: User
    role: Role


@dataclass(frozen=True)
class MemberPage:
    rows: list[Member]
    total: int


STATUS_LABELS = {"active": "Active", "invited": "Invited", "blocked": "Blocked"}


@dataclass(frozen=True)
class MemberRow:
    """One user as the Team page shows them."""

    id: str = ""
    name: str = ""
    email: str = ""
    role_id: str = ""
    role_name: str = ""
    status: str = ""
    status_label: str = ""
    added: str = ""
    is_self: bool = False
    manageable: bool = False
    products: str = ""


@dataclass(frozen=True)
class Option:
    id: str = ""
    name: str = ""


@dataclass(frozen=True)
class TeamView:
    """What the Team page shows: one page of users, the roles the actor may give, the account's
    products ([code, name]) and the seats."""

    rows: list[MemberRow]
    page_number: int
    has_next: bool
    role_options: list[Option]
    product_options: list[list[str]]
    seats_text: str
    seats_full: bool


def team_view(session: Session, actor: Actor, page_number: int = 1, *, page_size: int = 25) -> TeamView:
    """Page `page_number` of the team (the last page when that one is now empty)."""
    require(actor, Permission.TEAM_MANAGE)
    result = list_members(session, actor, offset=(page_number - 1) * page_size, limit=page_size)
    if not result.rows and page_number > 1:
        page_number = max(1, -(-result.total // page_size))
        result = list_members(session, actor, offset=(page_number - 1) * page_size, limit=page_size)
    timezone = account_of(session, actor.account_id).timezone
    usage = seats(session, actor)
    available = active_codes(session, actor.account_id)
    rows = [
        MemberRow(
            id=m.user.public_id,
            name=_name(m.user),
            email=m.user.email,
            role_id=str(m.role.id),
            role_name=m.role.name,
            status=m.user.status,
            status_label=STATUS_LABELS.get(m.user.status, m.user.status),
            added=format_day(m.user.created_at, timezone),
            is_self=m.user.id == actor.user_id,
            manageable=m.user.id != actor.user_id and within(actor, role_permissions(m.role)),
            products=", ".join(catalogue.names(product_access(session, m.user))),
        )
        for m in result.rows
    ]
    return TeamView(
        rows=rows,
        page_number=page_number,
        has_next=page_number * page_size < result.total,
        role_options=[Option(id=str(r.id), name=r.name) for r in assignable_roles(session, actor)],
        product_options=[[c, n] for c, n in zip(available, catalogue.names(available), strict=True)],
        seats_text=f"{usage.used} of {usage.limit} seats used"
        if usage.limit is not None
        else f"{usage.used} seats used",
        seats_full=not usage.free,
    )


def seat_limit(plan: Plan, seats_purchased: int = 0) -> int | None:
    """The seats an account has on a plan: the plan's included seats, or the seats bought when
    more (Account.seats_purchased); a plan without a seat limit (Custom) has no limit."""
    return max(plan.included_seats, seats_purchased) if "seats" in plan.limits else None


def _seats(session: Session, account_id: int) -> Seats:
    used = session.exec(
        select(func.count(col(User.id))).where(User.account_id == account_id, col(User.status).in_(SEAT_STATUSES))
    ).one()
    account = account_of(session, account_id)
    return Seats(used=used, limit=seat_limit(get_plan(account.plan_code), account.seats_purchased))


def seats(session: Session, actor: Actor) -> Seats:
    require(actor, Permission.TEAM_MANAGE)
    return _seats(session, actor.account_id)


def _require_free_seat(session: Session, account_id: int) -> None:
    usage = _seats(session, account_id)
    if not usage.free:
        plan = get_plan(account_of(session, account_id).plan_code)
        raise Conflict(
            f"All {usage.limit} seats of your {plan.name} plan are in use. "
            "Remove a user or revoke an invitation first, or change your plan."
        )


def list_members(session: Session, actor: Actor, *, offset: int = 0, limit: int = 25) -> MemberPage:
    """The account's users, oldest first."""
    require(actor, Permission.TEAM_MANAGE)
    if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
        raise ValidationFailed(f"A page holds 1 to {MAX_PAGE_SIZE} rows.")
    total = session.exec(select(func.count(col(User.id))).where(User.account_id == actor.account_id)).one()
    rows = session.exec(
        select(User, Role)
        .join(Role, col(Role.id) == col(User.role_id))
        .where(User.account_id == actor.account_id)
        .order_by(col(User.created_at), col(User.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return MemberPage(rows=[Member(user=u, role=r) for u, r in rows], total=total)


def assignable_roles(session: Session, actor: Actor) -> list[Role]:
    """The roles the actor may give: built-in and the account's custom roles within their own."""
    require(actor, Permission.TEAM_MANAGE)
    roles = session.exec(
        select(Role)
        .where((col(Role.builtin) == True) | (col(Role.account_id) == actor.account_id))  # noqa: E712
        .order_by(col(Role.builtin).desc(), func.lower(Role.name))
    ).all()
    return [r for r in roles if within(actor, role_permissions(r))]


def _assignable(session: Session, actor: Actor, role_id: int | None) -> Role:
    if role_id is None:
        raise ValidationFailed("Choose a role.", field="role")
    try:
        role = role_for_account(session, actor.account_id, role_id)
    except NotFound:
        raise ValidationFailed("Choose one of your account's roles.", field="role") from None
    if not within(actor, role_permissions(role)):
        raise PermissionDenied(
            f"You cannot give the role {role.name}: it has permissions you do not hold.", field="role"
        )
    return role


def _member(session: Session, actor: Actor, user_public_id: str) -> tuple[User, Role]:
    """A user of the actor's account whom the actor may manage; any other id is not found."""
    row = session.exec(
        select(User, Role)
        .join(Role, col(Role.id) == col(User.role_id))
        .where(User.public_id == user_public_id, User.account_id == actor.account_id)
    ).first()
    if row is None:
        raise NotFound("That user is not on your team.")
    user, role = row
    if not within(actor, role_permissions(role)):
        raise PermissionDenied(f"{_name(user)} has permissions you do not hold; ask an owner.")
    return user, role


def _id(row: User | Role) -> int:
    assert row.id is not None, "a row read from the database has an id"
    return row.id


def _name(user: User) -> str:
    return user.full_name or user.email


def _is_owner(role: Role) -> bool:
    return role.builtin and role.key == "owner"


def _require_not_last_owner(session: Session, user: User, role: Role, doing: str) -> None:
    if not (_is_owner(role) and user.status == "active"):
        return
    others = session.exec(
        select(func.count(col(User.id)))
        .join(Role, col(Role.id) == col(User.role_id))
        .where(
            User.account_id == user.account_id,
            User.id != user.id,
            User.status == "active",
            col(Role.builtin) == True,  # noqa: E712
            Role.key == "owner",
        )
    ).one()
    if not others:
        raise Conflict(f"You cannot {doing} {_name(user)}: they are the last Owner. Make another user Owner first.")


def _clean_email(email: str) -> str:
    email = email.strip()
    if not email:
        raise ValidationFailed("Enter an email address.", field="email")
    try:
        return normalize_email(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ValidationFailed("Enter a valid email address, like name@example.com.", field="email") from None


def invite(
    session: Session,
    actor: Actor,
    *,
    email: str,
    full_name: str,
    role_id: int | None,
    base_url: str,
    products: list[str] | None = None,
) -> User:
    """Create an invited user and email them a link to choose a password. `products` are the
    account's products they may use (None: all of them)."""
    require(actor, Permission.TEAM_MANAGE)
    email = _clean_email(email)
    full_name = " ".join(full_name.split())
    if not full_name:
        raise ValidationFailed("Enter the user's full name.", field="full_name")
    if len(full_name) > 200:
        raise ValidationFailed("Use at most 200 characters.", field="full_name")
    access = _product_access(session, actor.account_id, products)
    role = _assignable(session, actor, role_id)
    lock_account(session, actor.account_id)
    _require_free_seat(session, actor.account_id)
    user = create_user(
        session,
        account=account_of(session, actor.account_id),
        email=email,
        full_name=full_name,
        role=role,
        password=None,
        status="invited",
    )
    user.products = access
    session.add(user)
    auth.issue_invitation(session, user, base_url=base_url)
    audit.record(session, actor, "team.invite", f"Invited {email} ({full_name}) as {role.name}")
    return user


def _product_access(session: Session, account_id: int, chosen: list[str] | None) -> str:
    """The `User.products` text for a choice of the account's products: "" means all of them."""
    available = active_codes(session, account_id)
    if chosen is None or set(chosen) == set(available):
        return ""
    if not chosen:
        raise ValidationFailed("Choose at least one product.", field="products")
    if unknown := set(chosen) - set(available):
        raise ValidationFailed(f"Your account does not have {', '.join(sorted(unknown))}.", field="products")
    return ",".join(code for code in available if code in chosen)


def product_access(session: Session, user: User) -> list[str]:
    """The codes of the products the user may use."""
    available = active_codes(session, user.account_id)
    return [code for code in available if code in user.products.split(",")] if user.products else available


def resend_invitation(session: Session, actor: Actor, user_public_id: str, *, base_url: str) -> User:
    """A new invitation email; the links sent before stop working."""
    require(actor, Permission.TEAM_MANAGE)
    user, _ = _member(session, actor, user_public_id)
    if user.status != "invited":
        raise ValidationFailed(f"{_name(user)} has already joined.")
    session.exec(delete(UserToken).where(col(UserToken.user_id) == user.id, col(UserToken.purpose) == "invite"))
    auth.issue_invitation(session, user, base_url=base_url)
    audit.record(session, actor, "team.invite", f"Sent the invitation to {user.email} again")
    return user


def _delete_user(session: Session, user: User) -> None:
    """Remove the user; what they did stays on record without their name."""
    session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id))
    session.exec(delete(UserToken).where(col(UserToken.user_id) == user.id))
    session.exec(
        update(Payment)
        .where(col(Payment.account_id) == user.account_id, col(Payment.created_by_user_id) == user.id)
        .values(created_by_user_id=None)
    )
    session.exec(update(ApiKey).where(col(ApiKey.created_by_user_id) == user.id).values(created_by_user_id=None))
    person = session.get_one(Person, user.person_id)
    session.delete(user)
    session.flush()
    # A person who is nobody's user any more is forgotten (their email can sign up afresh).
    if session.exec(select(User.id).where(User.person_id == person.id)).first() is None:
        session.delete(person)
        session.flush()


def revoke_invitation(session: Session, actor: Actor, user_public_id: str) -> str:
    """Withdraw a pending invitation (its link stops working, its seat is free); returns the email."""
    user, _ = _locked_member(session, actor, user_public_id)
    if user.status != "invited":
        raise ValidationFailed(f"{_name(user)} has already joined; remove them instead.")
    email = user.email
    _delete_user(session, user)
    audit.record(session, actor, "team.revoke", f"Revoked the invitation of {email}")
    return email


def _locked_member(
    session: Session, actor: Actor, user_public_id: str, *, not_self: str = "", field: str | None = None
) -> tuple[User, Role]:
    """The member a change is about, with the account's team locked; `not_self` is what the
    actor cannot do to themselves ("block yourself")."""
    require(actor, Permission.TEAM_MANAGE)
    lock_account(session, actor.account_id)
    user, role = _member(session, actor, user_public_id)
    if not_self and user.id == actor.user_id:
        raise PermissionDenied(f"You cannot {not_self}.", field=field)
    return user, role


def _set_status(session: Session, actor: Actor, user: User, status: str, action: str, summary: str) -> User:
    user.status = status
    session.add(user)
    if status == "blocked":
        auth.revoke_sessions(session, _id(user))
    session.flush()
    audit.record(session, actor, action, summary)
    return user


def block(session: Session, actor: Actor, user_public_id: str) -> User:
    """The user can no longer sign in, and their open sessions end now."""
    user, role = _locked_member(session, actor, user_public_id, not_self="block yourself")
    if user.status == "invited":
        raise ValidationFailed(f"{_name(user)} has not joined yet; revoke the invitation instead.")
    if user.status == "blocked":
        raise ValidationFailed(f"{_name(user)} is already blocked.")
    _require_not_last_owner(session, user, role, "block")
    return _set_status(session, actor, user, "blocked", "team.block", f"Blocked {user.email}")


def unblock(session: Session, actor: Actor, user_public_id: str) -> User:
    """Let a blocked user sign in again; they take a seat again."""
    user, _ = _locked_member(session, actor, user_public_id)
    if user.status != "blocked":
        raise ValidationFailed(f"{_name(user)} is not blocked.")
    _require_free_seat(session, actor.account_id)
    return _set_status(session, actor, user, "active", "team.unblock", f"Unblocked {user.email}")


def remove(session: Session, actor: Actor, user_public_id: str) -> str:
    """Remove a user from the account for good; returns their email."""
    user, role = _locked_member(session, actor, user_public_id, not_self="remove yourself")
    _require_not_last_owner(session, user, role, "remove")
    email = user.email
    _delete_user(session, user)
    audit.record(session, actor, "team.remove", f"Removed {email} from the account")
    return email


def change_role(session: Session, actor: Actor, user_public_id: str, role_id: int | None) -> User:
    """Give a user another role; it applies from their next action."""
    user, current = _locked_member(session, actor, user_public_id, not_self="change your own role", field="role")
    role = _assignable(session, actor, role_id)
    if role.id == current.id:
        return user
    if not _is_owner(role):
        _require_not_last_owner(session, user, current, "change the role of")
    user.role_id = _id(role)
    session.add(user)
    session.flush()
    audit.record(session, actor, "team.role", f"Changed the role of {user.email} from {current.name} to {role.name}")
    return user
