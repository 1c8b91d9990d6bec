"""The tornado side of the RPC: TLS identity, request dispatch, the server process."""
