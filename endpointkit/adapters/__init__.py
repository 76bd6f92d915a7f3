"""Backends: one module per provider, all implementing `endpointkit.adapters.base.Backend`."""
