"""Titles, assets, rights grants, talent and consents, import, search, clearance."""
