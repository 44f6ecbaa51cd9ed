"""Contract terms, document rendering and hashing, signatures, lifecycle, ODRL."""
