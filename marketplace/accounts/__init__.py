"""Organizations, users, API keys and the acting Principal."""
