"""Shared fixtures: real S3 servers, a test CA, RPC services (see each plugin module)."""

pytest_plugins = ["s3_fixtures", "security_fixtures", "rpc_fixtures", "db_fixtures"]
