"""Stock and reservation rules as plain Python: no I/O, no frameworks."""
