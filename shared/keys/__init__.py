"""Keys: the server keypair, which secrets stored values are under, rewrapping."""
