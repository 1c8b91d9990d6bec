"""Core command line entry points."""
