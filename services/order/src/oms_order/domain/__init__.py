"""The order and its saga as plain Python: no I/O, no frameworks."""
