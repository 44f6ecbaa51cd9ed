"""The kernel: database, errors, ids, pagination, idempotency, storage. Imports no domain."""
