"""The payment adapter: a `PaymentGateway` protocol, Stripe behind it, and a fake for tests.

localstripe (the emulator used locally and in tests/e2e), beyond docs/SERVERS.md:
- It accepts `payment_method_types` on create but drops it: the intent it returns has no such
  field, so nothing may rely on reading it back.
- A PaymentIntent's `status` is computed from its charge: `requires_payment_method` (no method,
  or the last charge was declined), `requires_confirmation`, `succeeded`; after a declined confirm
  (HTTP 402 `card_declined`, a `stripe.CardError`) it is `requires_payment_method` again, but
  unlike Stripe it cannot be confirmed anew: with another method set, its status stays
  `requires_payment_method` (the declined charge is still its latest) and confirm is a 400.
- It sends only `payment_intent.succeeded` and `payment_intent.payment_failed` for intents (no
  `payment_intent.created`), each about a second after the change, to every configured webhook,
  and never retries a delivery that failed: a missed event stays missed.
- The event body is pretty-printed JSON (`indent=2`, sorted keys) whose `data.object` is the
  whole intent, `metadata` and `client_secret` included; `Stripe-Signature` is `t=<event
  created>,v1=<HMAC-SHA256 of "t.body">`, which `stripe.Webhook.construct_event` accepts.
- An unknown intent id is a 404 `InvalidRequestError`, an unknown parameter a 400 naming it
  (`Unexpected description`).
- `POST /v1/payment_intents/{id}/cancel` cancels an intent in `requires_payment_method`,
  `requires_confirmation`, `requires_action` or `requires_capture` (anything else is a 400, as on
  Stripe); a canceled intent then refuses to be confirmed (400). It sends no event for it.
- `POST /v1/refunds` takes `payment_intent` (and `amount`, `metadata`): it refunds the intent's
  latest charge in full, at once (`status: succeeded`); an intent never charged is a 400. It sends
  no `charge.refunded` event, and ignores idempotency keys (two calls refund twice).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import stripe

from config import Settings
from marketplace.billing.errors import PaymentProviderError
from marketplace.core.runtime import Key

log = logging.getLogger("marketplace.billing")

# Connect and read timeouts: a payment call runs inside a request holding the contract's lock.
_TIMEOUT_SECONDS = (5.0, 20.0)
# The library retries network failures itself, reusing the idempotency key we pass.
_NETWORK_RETRIES = 2


#: The intent states Stripe lets us cancel (canceled ones can never be paid).
CANCELABLE_STATUSES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


@dataclass(frozen=True)
class Intent:
    """What we need of a Stripe PaymentIntent."""

    id: str
    client_secret: str
    status: str
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)


class PaymentGateway(Protocol):
    """Creates and reads payment intents; raises PaymentProviderError when the provider fails."""

    def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        """Cancel an intent not yet paid, so that it can never be paid."""
        ...

    def refund_intent(
        self, intent_id: str, *, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        """Refund a succeeded intent in full; return the refund's id."""
        ...


#: The runtime's payment gateway (Stripe, localstripe, or a fake in unit tests).
PAYMENTS: Key[PaymentGateway] = Key("the payment gateway")


class StripeGateway:
    """Stripe through the official library; `api_base` points it at an emulator instead."""

    def __init__(self, api_key: str, *, api_base: str | None = None) -> None:
        self.emulated = api_base is not None
        options: dict[str, Any] = {
            "max_network_retries": _NETWORK_RETRIES,
            "http_client": stripe.RequestsClient(timeout=_TIMEOUT_SECONDS),
        }
        if api_base is not None:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(api_key, **options)

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        return cls(settings.stripe_api_key, api_base=settings.stripe_api_base)

    def production_params(self, metadata: dict[str, str]) -> dict[str, Any]:
        """Parameters real Stripe takes and the emulator refuses (400): the one place they differ.

        No `automatic_payment_methods`: Stripe refuses it beside `payment_method_types`, and
        licences are paid by card.
        """
        if self.emulated:
            return {}
        contract_id = metadata.get("contract_id", "")
        return {
            "description": f"Clearcut licence {contract_id}",
            # Ties the charge to the contract for the transfers that will pay the studio.
            "transfer_group": contract_id,
        }

    def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> Intent:
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency,
            "payment_method_types": ["card"],
            "metadata": metadata,
            **self.production_params(metadata),
        }
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]  # a plain dict of the typed params
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _provider_error("create a payment", exc) from exc
        return _intent(intent)

    def retrieve_intent(self, intent_id: str) -> Intent:
        try:
            return _intent(self._client.v1.payment_intents.retrieve(intent_id))
        except stripe.StripeError as exc:
            raise _provider_error("read a payment", exc) from exc

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        try:
            intent = self._client.v1.payment_intents.cancel(
                intent_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _provider_error("cancel a payment", exc) from exc
        return _intent(intent)

    def refund_intent(
        self, intent_id: str, *, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": intent_id, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _provider_error("refund a payment", exc) from exc
        return str(refund.id)


def _intent(obj: Any) -> Intent:
    data = obj.to_dict()
    return Intent(
        id=data["id"],
        client_secret=data.get("client_secret") or "",
        status=data["status"],
        amount=int(data["amount"]),
        currency=str(data["currency"]).lower(),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def _provider_error(action: str, exc: stripe.StripeError) -> PaymentProviderError:
    # Stripe's message may name our account or request; the log keeps it, the client gets this.
    log.warning("stripe refused or failed to %s", action, exc_info=exc)
    status = exc.http_status or "no response"
    return PaymentProviderError(f"the payment provider failed to {action} ({status}); retry later")


class FakeGateway:
    """In-memory intents for unit tests; honours idempotency keys as Stripe does."""

    def __init__(self) -> None:
        self.intents: dict[str, Intent] = {}
        self.created: list[dict[str, Any]] = []
        self.failure: PaymentProviderError | None = None
        self.canceled: list[str] = []
        self.refunds: list[dict[str, Any]] = []
        self._by_key: dict[str, str] = {}

    def create_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> Intent:
        if self.failure is not None:
            raise self.failure
        if idempotency_key in self._by_key:
            return self.intents[self._by_key[idempotency_key]]
        intent_id = f"pi_fake{secrets.token_hex(8)}"
        intent = Intent(
            id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_hex(8)}",
            status="requires_payment_method",
            amount=amount_cents,
            currency=currency,
            metadata=dict(metadata),
        )
        self.intents[intent_id] = intent
        self._by_key[idempotency_key] = intent_id
        self.created.append(
            {
                "amount_cents": amount_cents,
                "currency": currency,
                "metadata": dict(metadata),
                "idempotency_key": idempotency_key,
            }
        )
        return intent

    def retrieve_intent(self, intent_id: str) -> Intent:
        if self.failure is not None:
            raise self.failure
        try:
            return self.intents[intent_id]
        except KeyError:
            raise PaymentProviderError("no such payment intent") from None

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        intent = self.retrieve_intent(intent_id)
        if intent.status not in CANCELABLE_STATUSES:
            raise PaymentProviderError(f"a {intent.status} payment intent cannot be canceled")
        self.canceled.append(intent_id)
        return self.set_status(intent_id, "canceled")

    def refund_intent(
        self, intent_id: str, *, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        intent = self.retrieve_intent(intent_id)
        if idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        if intent.status != "succeeded":
            raise PaymentProviderError(f"a {intent.status} payment intent cannot be refunded")
        refund_id = f"re_fake{secrets.token_hex(8)}"
        self._by_key[idempotency_key] = refund_id
        self.refunds.append({"id": refund_id, "intent_id": intent_id, "metadata": dict(metadata)})
        return refund_id

    def set_status(self, intent_id: str, status: str) -> Intent:
        """Move an intent as a paying client would (tests)."""
        self.intents[intent_id] = replace(self.intents[intent_id], status=status)
        return self.intents[intent_id]
