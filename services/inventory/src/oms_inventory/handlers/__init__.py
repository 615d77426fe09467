"""The service layer: product use cases and one handler per message."""
