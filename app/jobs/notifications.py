"""Job handlers for notifications (filled in by its capability)."""
