"""Model providers: the `Model` protocol, the SDK adapters, the catalog, the fake provider
server and the offline demo (docs/providers.md)."""
