"""License requests, offers and counter-offers, messages, operator mediation."""
