"""HTTPS RPC over tornado: the server (``Server``) and the transport of the clients (``Client``)."""
