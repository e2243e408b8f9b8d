import pytest

from app.errors import NotAuthenticated, PermissionDenied
from app.services.permissions import BUILTIN_ROLES, Actor, Permission, format_permissions, parse_permissions, require


def _actor(role_key: str) -> Actor:
    name, permissions = BUILTIN_ROLES[role_key]
    return Actor(1, 1, "a@example.com", "A", role_key, name, permissions)


def test_builtin_roles_follow_the_design():
    owner, admin, member = (BUILTIN_ROLES[k][1] for k in ("owner", "admin", "member"))
    assert owner == frozenset(Permission)
    assert Permission.ACCOUNT_RENAME not in admin and Permission.AUDIT_VIEW not in admin
    assert Permission.BILLING_MANAGE in admin and Permission.TEAM_MANAGE in admin
    assert member == {Permission.INFO_VIEW}


def test_require_refuses_missing_permission_and_anonymous():
    assert require(_actor("admin"), Permission.BILLING_VIEW).role_key == "admin"
    with pytest.raises(PermissionDenied):
        require(_actor("member"), Permission.BILLING_VIEW)
    with pytest.raises(NotAuthenticated):
        require(None, Permission.INFO_VIEW)


def test_permissions_round_trip_and_ignore_unknown_names():
    perms = frozenset({Permission.BILLING_VIEW, Permission.TEAM_MANAGE})
    assert parse_permissions(format_permissions(perms)) == perms
    assert parse_permissions("billing.view,launch.missiles") == {Permission.BILLING_VIEW}
