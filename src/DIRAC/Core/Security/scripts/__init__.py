"""Console scripts of the security layer."""
