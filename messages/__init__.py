"""The actor protocol: one module per actor inbox, every message a frozen dataclass."""
