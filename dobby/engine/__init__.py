"""The domain: aggregates, pure rules, ports and the application service. Depends on nothing outward."""
