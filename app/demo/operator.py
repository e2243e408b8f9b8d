"""Demo data for the operator's side: operator@example.com with the demo password, and the demo
operator API key (DEMO_OPERATOR_API_KEY); both printed by the run command."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.config import get_settings
from app.models import Account
from app.services.operator import keys, staff

DEMO_OPERATOR = ("operator@example.com", "Oscar Operator")


def seed(session: Session, _account: Account, _now: datetime) -> None:
    settings = get_settings()
    email, name = DEMO_OPERATOR
    user, _link = staff.create_operator(session, email, full_name=name, base_url=settings.public_url)
    staff.set_password(session, user, settings.demo_password)
    keys.ensure_demo_key(session, settings.demo_operator_api_key)
