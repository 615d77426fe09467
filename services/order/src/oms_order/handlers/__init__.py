"""The service layer: use cases behind the HTTP API and one handler per message."""
