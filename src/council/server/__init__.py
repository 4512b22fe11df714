"""The ASGI app and its listeners: auth and headers live here and nowhere else."""
