"""The GRASP relay domain: Nostr events, NIP-34, storage, git and the relay itself.

Dependency direction: ``messages`` <- ``actors`` <- ``grasp``. Only ``grasp.relay`` and the
wiring in ``grasp.context`` may import ``actors``.
"""

__version__ = "0.1.0"
