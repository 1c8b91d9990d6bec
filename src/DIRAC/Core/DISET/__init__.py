"""DIRAC's service API names: ``RequestHandler``, ``RPCClient``, ``AuthManager``."""
