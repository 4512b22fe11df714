"""Pulling models from Hugging Face (or a mirror) onto the stick."""
