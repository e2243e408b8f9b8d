"""The operator's back office at /operator: its own sign-in, the accounts, one account, API keys,
the chat box's conversations."""

from app.pages.operator import account, accounts, api_keys, conversations, sign_in

__all__ = ["account", "accounts", "api_keys", "conversations", "sign_in"]
