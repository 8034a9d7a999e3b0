"""The HTTP surface: REST and WebSocket handlers, the OpenAPI document, the standalone page
(docs/api.md)."""
