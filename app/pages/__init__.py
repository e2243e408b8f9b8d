"""Every page module, imported once so its @console_page/@public_page registration runs."""

from app.pages import (
    account_recovery,
    add_credits,
    balance_history,
    billing_overview,
    company,
    info,
    invitation,
    sign_in,
)

__all__ = [
    "account_recovery",
    "add_credits",
    "balance_history",
    "billing_overview",
    "company",
    "info",
    "invitation",
    "sign_in",
]
