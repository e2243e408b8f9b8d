"""Company information: the account's name, logo, domain, default timezone, language and address.

The Account table has no address columns, so the address lives in the invoice address fields of
BillingSettings: the company address and the address printed on invoices are one and the same.

Logos are stored under `settings.data_dir / "uploads"` and served by app/api/files.py. Their type
is decided by their content (PNG and JPEG signatures, SVG parsed), never by the file name; an SVG
must pass the allow-list of app/services/svg.py (no scripts, event handlers, external references
or DOCTYPE), and SVGs are also served with a sandboxing Content-Security-Policy."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import available_timezones

from babel import Locale
from sqlmodel import Session

from app.errors import FormInvalid, NotFound, ValidationFailed, changes_refused
from app.models import Account
from app.services import audit, svg
from app.services.address import FIELDS, Address, store_address, stored_address, validate_address
from app.services.info import limit_status
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.storage import file_size, stored_path, uploads_dir

NAME_MAX_LENGTH = 200
LOGO_MAX_BYTES = 1024 * 1024
LOGO_TYPES = {"png": "image/png", "jpg": "image/jpeg", "svg": "image/svg+xml"}
LOGO_RULES = "Upload a PNG, JPEG or SVG image of at most 1 MB."

# A sensible subset of babel's locales: the languages the console's customers ask for.
LANGUAGE_CODES = (
    "ar", "cs", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "hu", "id", "it", "ja", "ko",
    "nb", "nl", "pl", "pt", "pt_BR", "ro", "ru", "sv", "tr", "uk", "zh_Hans", "zh_Hant",
)  # fmt: skip
TIMEZONE_AREAS = (
    "Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific",
)  # fmt: skip

# The Company form's names for the address fields (errors are keyed by them too).
ADDRESS_NAMES = {name: f"address_{name}" for name in FIELDS}
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@cache
def timezone_options() -> tuple[str, ...]:
    """IANA "Area/City" zones and UTC, from the system's tz database."""
    zones = (z for z in available_timezones() if z.split("/", 1)[0] in TIMEZONE_AREAS and "/" in z)
    return ("UTC", *sorted(zones))


@cache
def language_options() -> tuple[tuple[str, str], ...]:
    """(code, "Deutsch — German") for each offered language, in its own name and in English,
    sorted by the English name."""
    options = []
    for code in LANGUAGE_CODES:
        locale = Locale.parse(code)
        own, english = locale.get_display_name() or code, locale.get_display_name("en") or code
        own = own[:1].upper() + own[1:]
        options.append((english, code, own if own == english else f"{own} — {english}"))
    return tuple((code, label) for _, code, label in sorted(options))


def language_name(code: str) -> str:
    return dict(language_options()).get(code, code)


@dataclass(frozen=True)
class CompanyDetails:
    name: str
    public_id: str
    domain: str
    timezone: str
    language: str
    address: Address
    logo_url: str
    can_edit: bool
    can_rename: bool


def _account(session: Session, actor: Actor) -> Account:
    account = session.get(Account, actor.account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


def account_timezone(session: Session, actor: Actor) -> str:
    """The account's default timezone, in which every page shows dates."""
    return _account(session, actor).timezone


def company_details(session: Session, actor: Actor) -> CompanyDetails:
    require(actor, Permission.COMPANY_VIEW)
    account = _account(session, actor)
    settings = billing_settings(session, actor.account_id)
    return CompanyDetails(
        name=account.name,
        public_id=account.public_id,
        domain=account.domain,
        timezone=account.timezone,
        language=account.language,
        address=stored_address(settings),
        logo_url=logo_url(account),
        can_edit=actor.can(Permission.COMPANY_EDIT),
        can_rename=actor.can(Permission.ACCOUNT_RENAME),
    )


def normalize_domain(text: str) -> str:
    """ "Example.COM." -> "example.com"; "" stays "" (no domain). Raises ValueError with the reason."""
    domain = text.strip().lower().rstrip(".")
    if not domain:
        return ""
    if "://" in domain or "/" in domain or "@" in domain or ":" in domain:
        raise ValueError("Enter only the domain, like example.com: no http://, path, port or email.")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("This is not a valid domain name.") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError("Enter a domain like example.com.")
    if labels[-1].isdigit():
        raise ValueError("Enter a domain name, not an IP address.")
    return domain


def update_company(
    session: Session, actor: Actor, *, domain: str, timezone: str, language: str, address: Address
) -> Account:
    """Save the company form: all of it, or nothing with every field's error."""
    require(actor, Permission.COMPANY_EDIT)
    errors: dict[str, str] = {}
    try:
        domain = normalize_domain(domain)
    except ValueError as exc:
        errors["domain"] = str(exc)
    if timezone not in timezone_options():
        errors["timezone"] = "Choose a timezone from the list."
    if language not in LANGUAGE_CODES:
        errors["language"] = "Choose a language from the list."
    try:
        address = validate_address(address, required=False, names=ADDRESS_NAMES)
    except FormInvalid as exc:
        errors.update(exc.errors)
    if errors:
        raise FormInvalid(errors)
    account = _account(session, actor)
    account.domain, account.timezone, account.language = domain, timezone, language
    session.add(account)
    settings = billing_settings(session, actor.account_id)
    store_address(settings, address)
    session.add(settings)
    session.flush()
    audit.record(
        session,
        actor,
        "company.details",
        f"Saved company information: domain {domain or 'none'}, timezone {timezone}, language {language}",
    )
    return account


def rename_account(session: Session, actor: Actor, name: str) -> Account:
    """Only owners may rename the account (Permission.ACCOUNT_RENAME)."""
    require(actor, Permission.ACCOUNT_RENAME)
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("Enter the account name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(f"Use at most {NAME_MAX_LENGTH} characters.", field="name")
    account = _account(session, actor)
    account.name = name
    session.add(account)
    session.flush()
    audit.record(session, actor, "company.rename", f"Renamed the account to “{name}”")
    return account


# --- Logo -----------------------------------------------------------------------------------

UNSAFE_SVG = "This SVG contains scripts, event handlers or links to other files. Export it as a plain SVG or a PNG."


def _check_svg(content: bytes) -> None:
    not_svg = ValidationFailed(f"This file is not a valid SVG image. {LOGO_RULES}", field="logo")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise not_svg from None
    lowered = text.lower()
    # No DTDs at all: no entity expansion, no external entities.
    if "<!doctype" in lowered or "<!entity" in lowered or "<?xml-stylesheet" in lowered:
        raise ValidationFailed(UNSAFE_SVG, field="logo")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise not_svg from None
    if root.tag != f"{{{svg.SVG_NS}}}svg":
        raise not_svg
    try:
        svg.check(root)
    except svg.UnsafeSvg:
        raise ValidationFailed(UNSAFE_SVG, field="logo") from None


def logo_kind(content: bytes) -> str:
    """ "png", "jpg" or "svg" from the file's content; ValidationFailed (field "logo") otherwise."""
    if not content:
        raise ValidationFailed(f"The file is empty. {LOGO_RULES}", field="logo")
    if len(content) > LOGO_MAX_BYTES:
        raise ValidationFailed(f"The file is larger than 1 MB. {LOGO_RULES}", field="logo")
    if content.startswith(b"\x89PNG\r\n\x1a\n") and content[12:16] == b"IHDR":
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpg"
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype")):
        _check_svg(content)
        return "svg"
    raise ValidationFailed(f"This file is not a PNG, JPEG or SVG image. {LOGO_RULES}", field="logo")


def _logo_path(account: Account) -> Path | None:
    return stored_path(account.logo_path)


def logo_url(account: Account) -> str:
    """The logo's URL, versioned by its file name so a new logo is never served from a cache."""
    return f"/api/account/logo?v={Path(account.logo_path).stem}" if account.logo_path else ""


def save_logo(session: Session, actor: Actor, content: bytes) -> str:
    """Store a new logo for the actor's account. Returns the previous logo's path, which the
    caller removes with `discard_file` once the transaction has committed."""
    require(actor, Permission.COMPANY_EDIT)
    kind = logo_kind(content)
    account = _account(session, actor)
    check_storage(session, account, len(content) - file_size(account.logo_path), "logo")
    previous, account.logo_path = account.logo_path, store_file("logos", account.public_id, kind, content)
    session.add(account)
    session.flush()
    audit.record(session, actor, "company.logo", "Uploaded a new account logo")
    return previous


def check_storage(session: Session, account: Account, more_bytes: int, field: str) -> None:
    """Refuse an upload that would take the account's files past its plan's storage (the
    figures the Info page shows)."""
    storage = limit_status(session, account, "storage_bytes")
    if not storage.allows(more_bytes):
        plan = get_plan(account.plan_code).name
        raise ValidationFailed(
            f"Account limit reached: your {plan} plan includes {storage.limit_text} of file storage and "
            f"{storage.used_text} is in use, so this file does not fit. Remove a file or upgrade your plan.",
            field=field,
        )


def store_file(folder: str, owner_public_id: str, kind: str, content: bytes) -> str:
    """Write an uploaded file under a new name (so its URL is new too); its path relative to the
    uploads directory. Refused, with nothing written, where changes are (`changes_refused`)."""
    refusal = changes_refused.get()
    if refusal is not None:
        raise refusal
    relative = f"{folder}/{owner_public_id}-{secrets.token_hex(8)}.{kind}"
    target = uploads_dir() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return relative


def remove_logo(session: Session, actor: Actor) -> str:
    """Forget the account's logo; returns its path for `discard_file` after commit."""
    require(actor, Permission.COMPANY_EDIT)
    account = _account(session, actor)
    previous, account.logo_path = account.logo_path, ""
    session.add(account)
    session.flush()
    audit.record(session, actor, "company.logo", "Removed the account logo")
    return previous


def discard_file(relative: str) -> None:
    """Delete an uploaded file that no row points to any more."""
    if not relative:
        return
    root = uploads_dir().resolve()
    path = (root / relative).resolve()
    if path.is_relative_to(root):
        path.unlink(missing_ok=True)


def logo_file(session: Session, actor: Actor) -> tuple[Path, str]:
    """The actor's account's logo file and its media type; NotFound when there is none."""
    require(actor, Permission.INFO_VIEW)
    account = _account(session, actor)
    path = _logo_path(account)
    if path is None or not path.is_file():
        raise NotFound("This account has no logo.")
    return path, LOGO_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
