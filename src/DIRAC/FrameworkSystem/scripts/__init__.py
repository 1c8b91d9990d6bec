"""Console scripts of the Framework system."""
