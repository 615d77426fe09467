"""Shipping service: dispatch notes, tracking numbers and carrier tracking events."""
