"""The card gateway, seen through an adapter interface."""
