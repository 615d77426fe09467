"""Inventory service: products, stock levels and reservations."""
