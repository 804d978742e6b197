"""Channel adapters: one module per platform, each behind the protocol in channels.base."""
