"""The engine layer: find or build llama-server, and supervise one process per seat."""
