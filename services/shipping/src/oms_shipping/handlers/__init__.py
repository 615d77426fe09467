"""The service layer: shipment use cases and one handler per message."""
