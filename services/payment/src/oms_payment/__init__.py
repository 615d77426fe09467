"""Payment service: authorizations, captures, voids and refunds through the card gateway."""
