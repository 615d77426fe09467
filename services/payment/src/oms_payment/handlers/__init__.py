"""The service layer: one handler per command, and the gateway worker."""
