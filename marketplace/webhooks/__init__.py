"""Webhooks: organizations' endpoints, the events they receive, and their signed delivery."""
