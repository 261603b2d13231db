"""The edges of the platform: object store, warehouse, registry, notifications."""
