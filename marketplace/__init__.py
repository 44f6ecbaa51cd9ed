"""Clearcut: the marketplace where studios license their libraries as AI training data."""
