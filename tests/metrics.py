"""Reading this process's Prometheus metrics (app/metrics.py) in tests."""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The current value of one series of this process's registry (0 before its first event)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
