"""DataManagement system clients: DataManager."""
