"""One file per method; each registers itself with `zoo.registry.register_method`."""
