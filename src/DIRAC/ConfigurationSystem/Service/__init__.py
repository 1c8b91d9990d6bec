"""Services of the Configuration system (``Configuration/Server``)."""
