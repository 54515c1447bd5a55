"""Nostr protocol pieces: NIP-01 events and filters, result prefixes, NIP-19 keys, NIP-34 models.

Nothing here performs I/O; the relay, the store and the purgatory build on these types.
"""
