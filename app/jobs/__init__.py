"""Durable background work. Jobs are rows written in the same transaction as their cause."""
