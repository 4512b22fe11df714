"""Keys, tokens, pairing codes and TLS material; secrets never leave the stick."""
