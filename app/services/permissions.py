"""Roles and permissions: the one check every event handler and endpoint goes through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.errors import NotAuthenticated, PermissionDenied


class Permission(StrEnum):
    INFO_VIEW = "info.view"
    COMPANY_VIEW = "company.view"
    COMPANY_EDIT = "company.edit"
    ACCOUNT_RENAME = "account.rename"
    PLAN_MANAGE = "plan.manage"
    BILLING_VIEW = "billing.view"
    BILLING_MANAGE = "billing.manage"
    TEAM_MANAGE = "team.manage"
    ROLES_MANAGE = "roles.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    AUDIT_VIEW = "audit.view"


# Whoever may change something may also see it: a role that holds a key holds its value too.
IMPLIED_PERMISSIONS: dict[Permission, Permission] = {
    Permission.BILLING_MANAGE: Permission.BILLING_VIEW,
    Permission.COMPANY_EDIT: Permission.COMPANY_VIEW,
    Permission.ACCOUNT_RENAME: Permission.COMPANY_VIEW,
}


PERMISSION_LABELS: dict[Permission, str] = {
    Permission.INFO_VIEW: "See the Info page",
    Permission.COMPANY_VIEW: "See company information",
    Permission.COMPANY_EDIT: "Edit company information",
    Permission.ACCOUNT_RENAME: "Rename the account",
    Permission.PLAN_MANAGE: "Change plan and seats",
    Permission.BILLING_VIEW: "See billing",
    Permission.BILLING_MANAGE: "Manage billing and payments",
    Permission.TEAM_MANAGE: "Invite and manage users",
    Permission.ROLES_MANAGE: "Manage roles",
    Permission.API_KEYS_MANAGE: "Manage API keys",
    Permission.AUDIT_VIEW: "Read the audit log",
}

ALL_PERMISSIONS = frozenset(Permission)
OWNER_ONLY = frozenset({Permission.ACCOUNT_RENAME, Permission.AUDIT_VIEW})

# key -> (name, permissions)
BUILTIN_ROLES: dict[str, tuple[str, frozenset[Permission]]] = {
    "owner": ("Owner", ALL_PERMISSIONS),
    "admin": ("Admin", ALL_PERMISSIONS - OWNER_ONLY),
    "member": ("Member", frozenset({Permission.INFO_VIEW})),
}


def parse_permissions(text: str) -> frozenset[Permission]:
    known = {p.value for p in Permission}
    return frozenset(Permission(p) for p in text.split(",") if p in known)


def format_permissions(permissions: frozenset[Permission] | set[Permission]) -> str:
    return ",".join(sorted(p.value for p in permissions))


@dataclass(frozen=True)
class Actor:
    """The signed-in user, as every service sees them. Built fresh for each event."""

    user_id: int
    account_id: int
    email: str
    full_name: str
    role_key: str
    role_name: str
    permissions: frozenset[Permission]
    session_id: int | None = None
    # The account's timezone, in which every date the user sees is shown.
    timezone: str = "UTC"
    # An operator viewing the account ("View as"): no membership, and nothing may change.
    viewing: bool = False

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def require(actor: Actor | None, permission: Permission) -> Actor:
    """Raise unless the actor is signed in and holds the permission."""
    if actor is None:
        raise NotAuthenticated("Please sign in.")
    if not actor.can(permission):
        raise PermissionDenied("Your role does not allow this.")
    return actor
