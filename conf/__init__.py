"""ganbench's Hydra configs, shipped as the package ``ganbench.conf`` (``ganbench/conf`` links here).

The package makes them reachable from any install: ``ganbench.train.CONFIG_DIR``, or
``hydra.searchpath=[pkg://ganbench.conf]`` in another project.
"""
