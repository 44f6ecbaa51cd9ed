"""Delivery: signed manifests, metered presigned downloads, usage and the delivery log."""
