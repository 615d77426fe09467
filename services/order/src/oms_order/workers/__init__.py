"""Loops the service runs beside its consumer and API (started by the composition root)."""
