"""Methods: the contract every processing method implements, the registry, and the built-in methods."""
