"""Sub-commands of ``encotag``: each module has ``register(subparsers)`` and ``run(args) -> int``."""
