"""Billing: Stripe payments for signed contracts, the Stripe webhook, the studios' payout ledger."""
