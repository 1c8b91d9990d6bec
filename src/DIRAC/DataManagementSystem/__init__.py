"""DataManagementSystem."""
