"""The client transport of the RPC: TLS credentials, kept-alive sessions, URL fail-over."""
