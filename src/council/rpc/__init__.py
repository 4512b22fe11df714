"""llama.cpp's RPC backend across machines: `council worker` serves a machine's compute to
paired hubs through an authenticated TLS tunnel; the hub carries each seat's RPC stream to its
workers through it (see worker.py and tunnel.py for what each side can and cannot see)."""
