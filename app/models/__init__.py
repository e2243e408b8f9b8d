"""All tables, imported here so Alembic and the app see one metadata."""

from app.models.account import Account, PlanChange
from app.models.api_key import ApiKey, MeteringRequest, WebhookAttempt, WebhookDelivery
from app.models.audit import AuditEvent
from app.models.base import SQLModel, public_id, utcnow
from app.models.billing import (
    BillingSettings,
    CreditBalance,
    CreditGrant,
    CreditHold,
    GrantCursor,
    GrantDraw,
    LedgerEntry,
    Payment,
    PaymentMethod,
    StripeEvent,
    UsageRollup,
    UsageRollupState,
)
from app.models.chat import ChatConversation, ChatMessage
from app.models.invoice import Invoice, InvoiceCounter, InvoiceLine, TaxRegistration
from app.models.job import Job, WorkerHeartbeat
from app.models.operator import OperatorApiKey, OperatorSession, OperatorToken, OperatorUser
from app.models.outbox import OutboxEmail
from app.models.product import AccountProduct
from app.models.user import AuthAttempt, AuthSession, Person, Role, User, UserToken

__all__ = [
    "Account",
    "AccountProduct",
    "AuditEvent",
    "ApiKey",
    "MeteringRequest",
    "WebhookAttempt",
    "WebhookDelivery",
    "AuthAttempt",
    "AuthSession",
    "BillingSettings",
    "ChatConversation",
    "ChatMessage",
    "CreditBalance",
    "CreditGrant",
    "GrantCursor",
    "GrantDraw",
    "CreditHold",
    "LedgerEntry",
    "Payment",
    "PaymentMethod",
    "PlanChange",
    "Person",
    "StripeEvent",
    "Invoice",
    "InvoiceCounter",
    "InvoiceLine",
    "TaxRegistration",
    "Job",
    "OperatorApiKey",
    "OperatorSession",
    "OperatorToken",
    "OperatorUser",
    "OutboxEmail",
    "Role",
    "SQLModel",
    "User",
    "UserToken",
    "UsageRollup",
    "UsageRollupState",
    "WorkerHeartbeat",
    "public_id",
    "utcnow",
]
