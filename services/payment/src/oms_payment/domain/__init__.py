"""Payment rules as plain Python: no I/O, no frameworks."""
