"""PaymentIntents, charges, refunds and disputes."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .cards import Decline
from .db import Record
from .errors import invalid_request, missing_param
from .ids import new_id, random_token
from .money import format_amount
from .params import (
    check_allowed,
    created_filter,
    get_bool,
    get_dict,
    get_expand,
    get_int,
    get_metadata,
    get_str,
    update_metadata,
)
from .store import NO_REQUEST, RequestInfo, Store, changes_since

if TYPE_CHECKING:
    from .customers import Customers
    from .transfers import Transfers

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

#: Seconds before a test card's refund changes state (pending -> succeeded,
#: succeeded -> failed).
REFUND_TRANSITION_SECONDS = 2

WINNING_EVIDENCE = "winning_evidence"
LOSING_EVIDENCE = "losing_evidence"


class Payments:
    """PaymentIntent, Charge, Refund and Dispute operations.

    Args:
        store: The object store.
        transfers: Connect bookkeeping (balance transactions, transfers, fees).
    """

    def __init__(
        self, store: Store, transfers: Transfers | None = None, customers: Customers | None = None
    ) -> None:
        self.store = store
        self.transfers = transfers
        self.customers = customers

    # -- payment intents -------------------------------------------------

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        description: str | None,
        receipt_email: str | None,
        connect: dict[str, Any] | None = None,
    ) -> Record:
        """Create a PaymentIntent awaiting a payment method (in a transaction).

        ``connect`` holds a destination charge's ``application_fee_amount``,
        ``destination``, ``on_behalf_of`` and ``transfer_group``.
        """
        connect = connect or {}
        destination = connect.get("destination")
        pi_id = new_id("pi_test", 24)
        data = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "application": None,
            "application_fee_amount": connect.get("application_fee_amount"),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{pi_id}_secret_{random_token(24)}",
            "confirmation_method": "automatic",
            "created": self.store.now(),
            "currency": currency,
            "customer": None,
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "on_behalf_of": connect.get("on_behalf_of"),
            "payment_method": None,
            "payment_method_types": ["card"],
            "receipt_email": receipt_email,
            "status": "requires_payment_method",
            "transfer_data": {"destination": destination} if destination else None,
            "transfer_group": connect.get("transfer_group"),
        }
        return self.store.insert("payment_intent", data)

    def payment_intent_view(self, record: Record, expand: set[str]) -> dict[str, Any]:
        """Return a PaymentIntent as the API shows it (``latest_charge`` expandable, and the
        charge's own expandable fields through it: ``latest_charge.balance_transaction``)."""
        data = dict(record.data)
        nested = {path.split(".", 1)[1] for path in expand if path.startswith("latest_charge.")}
        unknown = sorted(p for p in expand if p != "latest_charge" and not p.startswith("latest_charge."))
        if unknown:
            raise invalid_request(f"This property cannot be expanded ({unknown[0]}).", param="expand")
        if (expand or nested) and data["latest_charge"]:
            charge = self.store.get("charge", data["latest_charge"])
            if charge is None:
                data["latest_charge"] = None
            elif self.transfers is not None:
                data["latest_charge"] = self.transfers.expand_charge(charge.data, nested)
            else:
                data["latest_charge"] = charge.data
        return data

    def retrieve_payment_intent(self, pi_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/payment_intents/{id}``."""
        check_allowed(params, {"expand", "client_secret"})
        return self.payment_intent_view(
            self.store.require("payment_intent", pi_id, param="intent"), get_expand(params)
        )

    def list_payment_intents(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/payment_intents``: newest first, filters ``created`` and ``customer``."""
        check_allowed(params, {"created", "customer", "limit", "starting_after", "ending_before", "expand"})
        created = created_filter(params)
        customer = get_str(params, "customer")
        records, has_more = self.store.page_of(
            "payment_intent",
            params,
            accept=lambda r: created(r.created) and (customer is None or r.data["customer"] == customer),
        )
        expand = {p.removeprefix("data.") for p in get_expand(params)}
        return [self.payment_intent_view(r, expand) for r in records], has_more

    def retrieve_charge(self, charge_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/charges/{id}``."""
        check_allowed(params, {"expand"})
        return self.store.require("charge", charge_id, param="charge").data

    # -- charges ---------------------------------------------------------

    def create_charge(
        self,
        pi: Record,
        *,
        card: dict[str, Any],
        email: str,
        name: str,
        decline: Decline | None,
    ) -> Record:
        """Record a charge attempt on ``pi`` (succeeded, or failed with ``decline``)."""
        succeeded = decline is None
        if self.customers is not None:
            pm_id = self.customers.create_card_payment_method(card, email=email, name=name)["id"]
        else:
            pm_id = new_id("pm", 24)
        outcome: dict[str, Any] = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
        failure_code = failure_message = None
        if decline is not None:
            failure_code, failure_message = decline.code, decline.message
            outcome.update(
                network_status="declined_by_network",
                reason=decline.decline_code,
                seller_message="The bank did not return any further details with this decline.",
                type=decline.outcome_type,
            )
            if decline.outcome_type == "blocked":
                outcome.update(
                    network_status="not_sent_to_network",
                    reason="highest_risk_level",
                    risk_level="highest",
                    seller_message="Stripe blocked this payment as too risky.",
                )
        data = {
            "id": new_id("ch_test", 24),
            "object": "charge",
            "amount": pi.data["amount"],
            "amount_captured": pi.data["amount"] if succeeded else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": pi.data.get("application_fee_amount") if succeeded else None,
            "balance_transaction": None,
            "billing_details": {"address": None, "email": email, "name": name, "phone": None},
            "captured": succeeded,
            "created": self.store.now(),
            "currency": pi.data["currency"],
            "customer": None,
            "description": pi.data["description"],
            "disputed": False,
            "failure_code": failure_code,
            "failure_message": failure_message,
            "livemode": False,
            "metadata": dict(pi.data["metadata"]),
            "outcome": outcome,
            "paid": succeeded,
            "payment_intent": pi.id,
            "payment_method": pm_id,
            "payment_method_details": {
                "card": {
                    "brand": card["brand"],
                    "checks": {
                        "address_line1_check": None,
                        "address_postal_code_check": None,
                        "cvc_check": "pass" if succeeded else "unchecked",
                    },
                    "country": "US",
                    "exp_month": card["exp_month"],
                    "exp_year": card["exp_year"],
                    "funding": "credit",
                    "last4": card["last4"],
                },
                "type": "card",
            },
            "on_behalf_of": pi.data.get("on_behalf_of"),
            "receipt_email": pi.data["receipt_email"] or email,
            "refunded": False,
            "source_transfer": None,
            "status": "succeeded" if succeeded else "failed",
            "transfer": None,
            "transfer_data": (
                {"amount": None, "destination": pi.data["transfer_data"]["destination"]}
                if pi.data.get("transfer_data")
                else None
            ),
            "transfer_group": pi.data.get("transfer_group"),
        }
        return self.store.insert(
            "charge",
            data,
            internal={"refund_behavior": card.get("refund_behavior")},
            lookup=pi.id,
        )

    def open_dispute(self, charge: Record) -> Record:
        """Open a fraudulent dispute on ``charge`` and emit ``charge.dispute.created``."""
        brand = charge.data["payment_method_details"]["card"]["brand"]
        data = {
            "id": new_id("dp_test", 24),
            "object": "dispute",
            "amount": charge.data["amount"],
            "balance_transactions": [],
            "charge": charge.id,
            "created": self.store.now(),
            "currency": charge.data["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {"uncategorized_text": None, "customer_email_address": None},
            "evidence_details": {
                "due_by": self.store.now() + 7 * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge.data["payment_intent"],
            "payment_method_details": {
                "card": {"brand": brand, "case_type": "chargeback", "network_reason_code": None},
                "type": "card",
            },
            "reason": "fraudulent",
            "status": "needs_response",
        }
        if self.transfers is not None:
            data["balance_transactions"] = [self.transfers.book_dispute(charge)]
        record = self.store.insert("dispute", data, lookup=charge.id)
        charge.data["disputed"] = True
        self.store.update(charge)
        self.store.emit("charge.dispute.created", data, NO_REQUEST)
        return record

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        """``GET /v1/disputes/{id}``."""
        return self.store.require("dispute", dispute_id, param="dispute").data

    def update_dispute(self, dispute_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/disputes/{id}``: evidence text ``winning_evidence`` /
        ``losing_evidence`` closes the dispute won / lost, as in Stripe's test mode."""
        check_allowed(params, {"evidence", "metadata", "submit", "expand"})
        evidence = get_dict(params, "evidence")
        with self.store.db.transaction():
            record = self.store.require("dispute", dispute_id, param="dispute")
            data = record.data
            before = copy.deepcopy(data)
            if data["status"] in ("won", "lost"):
                raise invalid_request("This dispute is already closed.", code="charge_dispute_closed")
            for key, value in evidence.items():
                if isinstance(value, str):
                    data["evidence"][key] = value or None
            data["metadata"].update(get_metadata(params))
            texts = " ".join(v for v in data["evidence"].values() if isinstance(v, str))
            data["evidence_details"]["has_evidence"] = bool(texts)
            event = "charge.dispute.updated"
            if WINNING_EVIDENCE in texts or LOSING_EVIDENCE in texts:
                data["status"] = "won" if WINNING_EVIDENCE in texts else "lost"
                data["evidence_details"]["submission_count"] += 1
                event = "charge.dispute.closed"
            elif params.get("submit") != "false" and texts:
                data["status"] = "under_review"
                data["evidence_details"]["submission_count"] += 1
            self.store.update(record)
            previous = changes_since(before, data) if event == "charge.dispute.updated" else None
            self.store.emit(event, data, request, previous=previous)
            return data

    # -- refunds ---------------------------------------------------------

    def create_refund(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/refunds`` for a ``payment_intent`` or a ``charge``.

        Emits ``refund.created`` and ``charge.refunded``. Refusals (nothing to
        refund, amount above what is left, a disputed charge) are
        ``invalid_request_error``.
        """
        check_allowed(
            params,
            {
                "payment_intent",
                "charge",
                "amount",
                "reason",
                "metadata",
                "expand",
                "instructions_email",
                "reverse_transfer",
                "refund_application_fee",
            },
        )
        reverse_transfer = bool(get_bool(params, "reverse_transfer"))
        refund_application_fee = bool(get_bool(params, "refund_application_fee"))
        pi_id = get_str(params, "payment_intent")
        charge_id = get_str(params, "charge")
        if not pi_id and not charge_id:
            raise missing_param("payment_intent")
        amount = get_int(params, "amount", minimum=1)
        reason = get_str(params, "reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid_request(
                f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason"
            )
        metadata = get_metadata(params)
        with self.store.db.transaction():
            if pi_id:
                pi = self.store.require("payment_intent", pi_id, param="payment_intent")
                if pi.data["status"] != "succeeded" or not pi.data["latest_charge"]:
                    raise invalid_request(
                        f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                        param="payment_intent",
                    )
                if charge_id and charge_id != pi.data["latest_charge"]:
                    raise invalid_request("The charge does not belong to this PaymentIntent.", param="charge")
                charge_id = pi.data["latest_charge"]
            charge = self.store.require("charge", charge_id, param="charge")
            cdata = charge.data
            if cdata["status"] != "succeeded":
                raise invalid_request(
                    f"Charge {charge.id} has not succeeded; it cannot be refunded.", param="charge"
                )
            if cdata["disputed"]:
                raise invalid_request(
                    f"Charge {charge.id} has been charged back; cannot issue a refund.",
                    code="charge_disputed",
                    param="charge",
                )
            remaining = cdata["amount"] - cdata["amount_refunded"]
            if remaining <= 0:
                raise invalid_request(
                    f"Charge {charge.id} has already been refunded.",
                    code="charge_already_refunded",
                    param="charge",
                )
            if amount is None:
                amount = remaining
            if amount > remaining:
                currency = cdata["currency"]
                raise invalid_request(
                    f"Refund amount ({format_amount(amount, currency)}) is greater than "
                    f"unrefunded amount on charge ({format_amount(remaining, currency)})",
                    code="amount_too_large",
                    param="amount",
                )
            if reverse_transfer and not cdata.get("transfer"):
                raise invalid_request(
                    "You cannot reverse the transfer of a charge that has no associated transfer: "
                    "`reverse_transfer` applies to destination charges.",
                    param="reverse_transfer",
                )
            if refund_application_fee and not cdata.get("application_fee"):
                raise invalid_request(
                    "This charge has no application fee to refund: `refund_application_fee` "
                    "applies to charges with an `application_fee_amount`.",
                    param="refund_application_fee",
                )
            behavior = charge.internal.get("refund_behavior")
            status = "pending" if behavior == "pending" else "succeeded"
            data = {
                "id": new_id("re_test", 24),
                "object": "refund",
                "amount": amount,
                "balance_transaction": None,
                "charge": charge.id,
                "created": self.store.now(),
                "currency": cdata["currency"],
                "destination_details": {"card": {"type": "refund"}, "type": "card"},
                "metadata": metadata,
                "payment_intent": cdata["payment_intent"],
                "payment_method": cdata["payment_method"],
                "reason": reason,
                "receipt_number": None,
                "source_transfer_reversal": None,
                "status": status,
                "transfer_reversal": None,
            }
            internal: dict[str, Any] = {}
            lookup = None
            if behavior in ("pending", "fails"):
                internal = {
                    "transition_at": self.store.clock.time() + REFUND_TRANSITION_SECONDS,
                    "to": "succeeded" if behavior == "pending" else "failed",
                }
                lookup = "transition"
            cdata["amount_refunded"] += amount
            cdata["refunded"] = cdata["amount_refunded"] >= cdata["amount"]
            if self.transfers is not None:
                self.transfers.book_refund(
                    charge,
                    data,
                    reverse_transfer=reverse_transfer,
                    refund_application_fee=refund_application_fee,
                    request=request,
                )
            record = self.store.insert("refund", data, internal=internal, lookup=lookup)
            self.store.update(charge)
            self.store.emit("refund.created", data, request)
            self.store.emit("charge.refunded", cdata, request)
            return self._refund_view(record.data, get_expand(params))

    #: What a refund's ``expand[]`` may name, and the object kind each id points to.
    REFUND_EXPANDABLE = {
        "balance_transaction": "balance_transaction",
        "charge": "charge",
        "payment_intent": "payment_intent",
        "transfer_reversal": "transfer_reversal",
    }

    def _refund_view(self, data: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        """A refund with the ids ``expand`` names replaced by their objects; anything else
        named is refused as Stripe does ("This property cannot be expanded")."""
        unknown = sorted(expand - set(self.REFUND_EXPANDABLE))
        if unknown:
            raise invalid_request(f"This property cannot be expanded ({unknown[0]}).", param="expand")
        view = dict(data)
        for name in expand:
            if view.get(name):
                record = self.store.get(self.REFUND_EXPANDABLE[name], view[name])
                view[name] = record.data if record else None
        return view

    def retrieve_refund(self, refund_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/refunds/{id}``."""
        check_allowed(params, {"expand"})
        return self._refund_view(
            self.store.require("refund", refund_id, param="refund").data, get_expand(params)
        )

    def list_refunds(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/refunds``: newest first, filters ``charge``, ``payment_intent``, ``created``."""
        check_allowed(
            params,
            {"charge", "payment_intent", "created", "limit", "starting_after", "ending_before", "expand"},
        )
        charge_id = get_str(params, "charge")
        pi_id = get_str(params, "payment_intent")
        created = created_filter(params)

        def accept(record: Record) -> bool:
            return (
                created(record.created)
                and (charge_id is None or record.data["charge"] == charge_id)
                and (pi_id is None or record.data["payment_intent"] == pi_id)
            )

        records, has_more = self.store.page_of("refund", params, accept=accept)
        expand = {p.removeprefix("data.") for p in get_expand(params)}
        return [self._refund_view(r.data, expand) for r in records], has_more

    def update_refund(self, refund_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/refunds/{id}``: only ``metadata`` changes, as on Stripe; emits
        ``refund.updated`` with ``previous_attributes``."""
        check_allowed(params, {"metadata", "expand"})
        with self.store.db.transaction():
            record = self.store.require("refund", refund_id, param="refund")
            before = copy.deepcopy(record.data)
            record.data["metadata"] = update_metadata(record.data["metadata"], params)
            self.store.update(record)
            if record.data != before:
                self.store.emit(
                    "refund.updated", record.data, request, previous=changes_since(before, record.data)
                )
            return self._refund_view(record.data, get_expand(params))

    def advance_refunds(self) -> int:
        """Move due test-card refunds on (pending -> succeeded, succeeded -> failed).

        Returns:
            How many refunds changed.
        """
        changed = 0
        for candidate in self.store.db.find("refund", "transition"):
            if candidate.internal.get("transition_at", 0) > self.store.clock.time():
                continue
            with self.store.db.transaction():
                record = self.store.get("refund", candidate.id)
                if record is None or record.lookup != "transition":
                    continue
                before = copy.deepcopy(record.data)
                target = record.internal.pop("to")
                record.internal.pop("transition_at", None)
                record.lookup = None
                record.data["status"] = target
                if target == "failed":
                    record.data["failure_reason"] = "expired_or_canceled_card"
                    charge = self.store.require("charge", record.data["charge"])
                    charge.data["amount_refunded"] -= record.data["amount"]
                    charge.data["refunded"] = charge.data["amount_refunded"] >= charge.data["amount"]
                    self.store.update(charge)
                    self.store.emit("refund.failed", record.data, NO_REQUEST)
                self.store.update(record)
                self.store.emit(
                    "refund.updated", record.data, NO_REQUEST, previous=changes_since(before, record.data)
                )
                changed += 1
        return changed
