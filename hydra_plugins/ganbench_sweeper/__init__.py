"""ganbench's study sweeper, found by Hydra's plugin discovery (plugins live in the ``hydra_plugins`` namespace)."""
