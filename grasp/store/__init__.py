"""Event storage: the SQLite event store (S11) that serves REQ queries and keeps NIP-01/NIP-09 rules."""
