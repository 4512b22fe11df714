"""SQLite on the stick: the only place SQL is written."""
