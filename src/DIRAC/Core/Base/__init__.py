"""DIRAC's ``Client`` base class for service clients."""
