"""council: a private AI hub on a USB stick."""

__version__ = "0.1.0"
