"""Single-use tokens, sign-in codes and server-side sessions: one implementation for customers'
users (`user_token`, `auth_session`) and the operator's staff (`operator_token`,
`operator_session`), each kept in its own tables and under its own cookies, so neither kind of
session or token is ever read where the other's is.

A secret is handed out once; only its SHA-256 is stored. A sign-in code is valid for one minute
and bound to a second secret that the signing-in browser keeps in a cookie (the `handoff_cookie`,
path `handoff_path`), so a code that leaks, or one an attacker got for their own account and
sends in a link, is refused elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import update
from sqlmodel import Session, SQLModel, col, select

from app.config import get_settings
from app.services import throttle
from app.services.accounts import normalize_email
from app.services.passwords import verify_password
from app.services.tokens import new_secret, sha256_hex

HANDOFF_TTL = timedelta(seconds=60)
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
WRONG_CREDENTIALS = "Wrong email or password."


class _Row(Protocol):
    id: int | None
    status: str


Holder = TypeVar("Holder", bound=_Row)
T = TypeVar("T", bound=SQLModel)


@dataclass(frozen=True)
class SignInOutcome:
    """Either a handoff code or the error to show. A failed attempt is recorded in a transaction
    of its own once the caller's ends (`throttle.record`), whether the caller commits or not."""

    handoff_code: str = ""
    # The secret the code is bound to: the page sets it as the handoff cookie before trading the code.
    binding: str = ""
    error: str = ""


@dataclass(frozen=True)
class Credentials(Generic[Holder]):
    """Who holds the tokens and sessions (`holder`, by the column `holder_key` of both tables),
    the two tables and the cookies: `cookie` holds the session token, `handoff_cookie` the secret
    a sign-in code is bound to, sent only to `handoff_path`, where the code is traded."""

    holder: type[Holder]
    token_model: type[SQLModel]
    session_model: type[SQLModel]
    holder_key: str
    cookie: str
    handoff_cookie: str
    handoff_path: str
    # The failed sign-ins' throttle kind.
    sign_in_kind: str

    def _column(self, model: type[Any], name: str) -> Any:
        return col(getattr(model, name))

    def issue(
        self, session: Session, holder: Holder, purpose: str, ttl: timedelta, now: datetime, **fields: Any
    ) -> str:
        """A new single-use secret of `purpose` for `holder`, valid for `ttl`; `binding` (a sign-in
        code's browser secret) is stored hashed, other fields as given."""
        holder_id = holder.id
        assert holder_id is not None  # a stored holder
        binding = fields.pop("binding", "")
        secret = new_secret()
        session.add(
            self.token_model(
                **{self.holder_key: holder_id},
                purpose=purpose,
                token_hash=sha256_hex(secret),
                binding_hash=sha256_hex(binding) if binding else "",
                created_at=now,
                expires_at=now + ttl,
                **fields,
            )
        )
        session.flush()
        return secret

    def usable(self, secret: str, purpose: str, now: datetime) -> tuple:
        """The token with this secret, for this use, not used and not expired."""
        return (
            self._column(self.token_model, "token_hash") == sha256_hex(secret),
            self._column(self.token_model, "purpose") == purpose,
            self._column(self.token_model, "used_at").is_(None),
            self._column(self.token_model, "expires_at") > now,
        )

    def holder_of(self, session: Session, secret: str, purpose: str, now: datetime) -> Holder | None:
        """The holder of a valid, unused token, without using it up."""
        if not secret:
            return None
        row = session.exec(select(self.token_model).where(*self.usable(secret, purpose, now))).first()
        return session.get(self.holder, getattr(row, self.holder_key)) if row is not None else None

    def consume(
        self, session: Session, secret: str, purpose: str, now: datetime, *, binding: str | None = None
    ) -> Holder | None:
        """Mark a token used and return its holder; None when unknown, used, expired, for another
        use or (a bound token) presented without its binding."""
        used = self.consume_token(session, secret, purpose, now, binding=binding)
        return session.get(self.holder, getattr(used, self.holder_key)) if used is not None else None

    def consume_token(
        self, session: Session, secret: str, purpose: str, now: datetime, *, binding: str | None = None
    ) -> Any:
        """As `consume`, the used token's row."""
        if not secret or binding == "":
            return None
        query = update(self.token_model).where(*self.usable(secret, purpose, now))
        if binding is not None:
            query = query.where(self._column(self.token_model, "binding_hash") == sha256_hex(binding))
        result = session.execute(query.values(used_at=now).returning(self._column(self.token_model, "id"))).first()
        return session.get(self.token_model, result[0]) if result is not None else None

    def handoff(
        self, session: Session, holder: Holder, now: datetime, purpose: str = "handoff", **fields: Any
    ) -> SignInOutcome:
        """A one-minute sign-in code for `holder`, bound to a new browser secret."""
        binding = new_secret()
        code = self.issue(session, holder, purpose, HANDOFF_TTL, now, binding=binding, **fields)
        return SignInOutcome(handoff_code=code, binding=binding)

    def start(
        self, session: Session, code: str, *, binding: str, now: datetime, **fields: Any
    ) -> tuple[str, Holder] | None:
        """Trade a sign-in code, with the cookie it is bound to, for a session of an active holder:
        its token and holder; None when the code, its binding or the holder is not valid."""
        holder = self.consume(session, code, "handoff", now, binding=binding)
        if holder is None or holder.status != "active":
            return None
        return self.open(session, holder, now, **fields), holder

    def open(self, session: Session, holder: Holder, now: datetime, **fields: Any) -> str:
        """A new session of `holder` (SESSION_TTL_HOURS) and its token."""
        token = new_secret()
        session.add(
            self.session_model(
                **{self.holder_key: holder.id},
                token_hash=sha256_hex(token),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=get_settings().session_ttl_hours),
                **fields,
            )
        )
        session.flush()
        return token

    def signed_in(self, session: Session, token: str, now: datetime) -> tuple[Any, Holder] | None:
        """The live session of a cookie token and its active holder, or None. Notes when it was
        last seen (at most once a minute)."""
        if not token:
            return None
        row = session.exec(
            select(self.session_model, self.holder)
            .join(self.holder, self._column(self.holder, "id") == self._column(self.session_model, self.holder_key))
            .where(self._column(self.session_model, "token_hash") == sha256_hex(token))
        ).first()
        if row is None:
            return None
        live: Any = row[0]
        holder: Holder = row[1]
        if live.revoked_at is not None or live.expires_at <= now or holder.status != "active":
            return None
        if now - live.last_seen_at > LAST_SEEN_GRANULARITY:
            live.last_seen_at = now
            session.add(live)
        return live, holder

    def end(self, session: Session, token: str, now: datetime) -> None:
        """Revoke the session of a cookie token (nothing when there is none)."""
        if token:
            session.execute(
                update(self.session_model)
                .where(
                    self._column(self.session_model, "token_hash") == sha256_hex(token),
                    self._column(self.session_model, "revoked_at").is_(None),
                )
                .values(revoked_at=now)
            )

    def locked_out(self, session: Session, email: str, ip_address: str, now: datetime) -> bool:
        """Too many failed sign-ins of this email from this address, or from this address at all.
        Counting the email per address means nobody can lock an owner out from everywhere;
        counting the address means one client cannot try one password on every email."""
        settings = get_settings()
        since = now - timedelta(minutes=settings.sign_in_lockout_minutes)
        return (
            throttle.count(session, self.sign_in_kind, since=since, email=email, ip=ip_address)
            >= settings.sign_in_max_failures
            or throttle.count(session, self.sign_in_kind, since=since, ip=ip_address)
            >= settings.sign_in_max_failures_per_ip
        )

    def check_password(
        self,
        session: Session,
        email: str,
        password: str,
        find: Callable[[str], T | None],
        *,
        ip_address: str,
        now: datetime,
    ) -> T | str:
        """What `find` returns for the (normalized) email when `password` is its `password_hash`;
        else the message to show, the failure recorded. An unknown email costs the same password
        check as a known one."""
        email = normalize_email(email)
        if not email or not password:
            return "Enter your email and password."
        if len(email) > throttle.MAX_EMAIL_LENGTH:
            return f"An email address has at most {throttle.MAX_EMAIL_LENGTH} characters."
        if self.locked_out(session, email, ip_address, now):
            minutes = get_settings().sign_in_lockout_minutes
            return f"Too many failed sign-in attempts. Try again in {minutes} minutes."
        found = find(email)
        if not verify_password(password, getattr(found, "password_hash", "")):
            throttle.record(session, self.sign_in_kind, email=email, ip=ip_address, now=now)
            return WRONG_CREDENTIALS
        assert found is not None  # an empty hash never verifies
        throttle.clear(session, self.sign_in_kind, email=email, ip=ip_address)
        return found
