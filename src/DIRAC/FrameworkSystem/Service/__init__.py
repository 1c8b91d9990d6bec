"""Services of the Framework system."""
