"""Job handlers for recharge (filled in by its capability)."""
