"""Runtime plumbing shared by every OMS service (no business rules live here)."""
