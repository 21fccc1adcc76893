"""Connect money movement: balance transactions, destination charges, transfers,
transfer reversals, application fees and their refunds, balances and payouts.

Every movement of money is a ``balance_transaction`` owned by the platform or by
one connected account (``internal.account``, and the row's lookup key:
``platform`` or the ``acct_...`` id). Balances are sums of their ``net``:
``pending`` until ``available_on``, then ``available`` (the sweeper flips them
and emits ``balance.available``).

Numbers:

* Stripe's processing fee on a platform charge: 2.9% + 30 cents,
  ``(amount * 29 + 500) // 1000 + 30`` (the percentage rounded half up to a
  cent), in the charge's balance transaction ``fee`` (``fee_details`` type
  ``stripe_fee``).
* A destination charge transfers ``amount - application_fee_amount`` to the
  destination; the platform keeps the fee (its balance: amount - Stripe fee -
  transfer). The ApplicationFee object records the platform's cut; it has no
  balance transaction of its own (``balance_transaction`` null), since the
  smaller transfer already leaves it with the platform.
* Funds become available ``2`` days after the charge (the account's
  ``settings.payouts.schedule.delay_days`` for its share), or at once when the
  buyer paid with ``4000000000000077``.
* A dispute debits the platform: amount plus a 1500-cent dispute fee.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from .accounts import ACCOUNT, Accounts
from .db import Record
from .errors import invalid_request, missing_param
from .ids import new_id
from .money import format_amount
from .params import check_allowed, created_filter, get_expand, get_int, get_metadata, get_str, update_metadata
from .store import NO_REQUEST, RequestInfo, Store, changes_since

BALANCE_TRANSACTION = "balance_transaction"
TRANSFER = "transfer"
TRANSFER_REVERSAL = "transfer_reversal"
APPLICATION_FEE = "application_fee"
FEE_REFUND = "fee_refund"
PAYOUT = "payout"
PLATFORM = "platform"

DAY = 86_400
#: Days before a charge's funds are available (Stripe's US default).
AVAILABILITY_DAYS = 2
#: The card that makes funds available at once (Stripe's test mode).
AVAILABLE_AT_ONCE_CARD = "4000000000000077"
#: Stripe's dispute fee in cents.
DISPUTE_FEE = 1500
#: A payout arrives this long after it is created.
PAYOUT_TRANSIT_SECONDS = DAY

TXN_DESCRIPTIONS = {
    "charge": None,
    "payment": None,
    "transfer": None,
    "transfer_refund": "REFUND FOR TRANSFER",
    "payment_refund": "REFUND FOR PAYMENT",
    "refund": "REFUND FOR CHARGE",
    "payout": "STRIPE PAYOUT",
    "payout_failure": "Payout failure",
    "adjustment": "Chargeback withdrawal",
    "application_fee_refund": "Application fee refund",
}
REPORTING_CATEGORIES = {
    "charge": "charge",
    "payment": "charge",
    "transfer": "transfer",
    "transfer_refund": "transfer_reversal",
    "payment_refund": "refund",
    "refund": "refund",
    "payout": "payout",
    "payout_failure": "payout_reversal",
    "adjustment": "dispute",
    "application_fee_refund": "platform_earning_refund",
}


def processing_fee(amount: int) -> int:
    """Stripe's card processing fee: 2.9% (rounded half up to a cent) + 30 cents."""
    return (amount * 29 + 500) // 1000 + 30


def proportional(part: int, whole: int, share: int) -> int:
    """Return ``share * part / whole`` rounded half up to an integer cent."""
    if whole <= 0:
        return 0
    return (2 * share * part + whole) // (2 * whole)


def _list(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


class Transfers:
    """Balance transactions, transfers, application fees and payouts.

    Args:
        store: The object store.
        accounts: The connected accounts.
    """

    def __init__(self, store: Store, accounts: Accounts) -> None:
        self.store = store
        self.accounts = accounts

    # -- balance transactions ----------------------------------------------

    def add_transaction(
        self,
        owner: str | None,
        type: str,
        amount: int,
        currency: str,
        source: str,
        *,
        fee: int = 0,
        available_on: int | None = None,
        description: str | None = None,
    ) -> Record:
        """Record a balance transaction of the platform (``owner`` None) or a connected account."""
        now = self.store.now()
        available_on = now if available_on is None else available_on
        fee_details = (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees" if type == "charge" else "Dispute fee",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        )
        data = {
            "id": new_id("txn", 24),
            "object": BALANCE_TRANSACTION,
            "amount": amount,
            "available_on": available_on,
            "balance_type": "payments",
            "created": now,
            "currency": currency,
            "description": description if description is not None else TXN_DESCRIPTIONS.get(type),
            "exchange_rate": None,
            "fee": fee,
            "fee_details": fee_details,
            "net": amount - fee,
            "reporting_category": REPORTING_CATEGORIES.get(type, type),
            "source": source,
            "status": "available" if available_on <= now else "pending",
            "type": type,
        }
        return self.store.insert(
            BALANCE_TRANSACTION, data, internal={"account": owner, "payout": None}, lookup=owner or PLATFORM
        )

    def balance(self, owner: str | None) -> dict[str, Any]:
        """``GET /v1/balance`` of the platform or of a connected account."""
        available: dict[str, int] = defaultdict(int)
        pending: dict[str, int] = defaultdict(int)
        for row in self._owner_rows(owner):
            target = available if row["status"] == "available" else pending
            target[row["currency"]] += row["net"]
        currency = "usd"
        if owner:
            account = self.accounts.get(owner)
            currency = account.data["default_currency"] if account else currency
        currencies = sorted(set(available) | set(pending)) or [currency]

        def amounts(source: dict[str, int]) -> list[dict[str, Any]]:
            return [
                {"amount": source.get(c, 0), "currency": c, "source_types": {"card": source.get(c, 0)}}
                for c in currencies
            ]

        return {
            "object": "balance",
            "available": amounts(available),
            "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
            "livemode": False,
            "pending": amounts(pending),
        }

    def _owner_rows(self, owner: str | None) -> list[Any]:
        return (
            self.store.db.connection()
            .execute(
                "SELECT json_extract(data, '$.status') AS status, json_extract(data, '$.currency') AS currency,"
                " json_extract(data, '$.net') AS net FROM objects WHERE type = ? AND lookup = ?",
                (BALANCE_TRANSACTION, owner or PLATFORM),
            )
            .fetchall()
        )

    def retrieve_transaction(self, txn_id: str, owner: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/balance_transactions/{id}`` (of the caller's own balance)."""
        check_allowed(params, {"expand"})
        return self._owned(BALANCE_TRANSACTION, txn_id, owner).data

    def list_transactions(
        self, owner: str | None, params: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/balance_transactions`` (filters ``payout``, ``type``, ``source``, ``currency``)."""
        check_allowed(
            params,
            {
                "limit",
                "starting_after",
                "ending_before",
                "payout",
                "type",
                "source",
                "currency",
                "created",
                "expand",
            },
        )
        payout = get_str(params, "payout")
        txn_type = get_str(params, "type")
        source = get_str(params, "source")
        currency = get_str(params, "currency")
        if payout:
            self._owned(PAYOUT, payout, owner, param="payout")

        def accept(record: Record) -> bool:
            return (
                (not payout or record.internal.get("payout") == payout)
                and (not txn_type or record.data["type"] == txn_type)
                and (not source or record.data["source"] == source)
                and (not currency or record.data["currency"] == currency)
            )

        records, has_more = self.store.page_of(
            BALANCE_TRANSACTION,
            params,
            lookups=[owner or PLATFORM],
            accept=accept,
        )
        return [r.data for r in records], has_more

    def _owned(self, type: str, object_id: str, owner: str | None, *, param: str = "id") -> Record:
        """Return an object of ``owner`` (platform when None); others' objects are 404, as on Stripe."""
        record = self.store.require(type, object_id, param=param)
        if record.internal.get("account") != owner:
            self.store.require(type, None, param=param)  # raises the same 404
        return record

    # -- destination charges -------------------------------------------------

    def check_destination(self, pi_data: dict[str, Any], amount: int) -> dict[str, Any]:
        """Validate ``payment_intent_data``'s Connect part at session creation.

        Returns:
            ``{application_fee_amount, destination, on_behalf_of, transfer_group}``.
        """
        prefix = "payment_intent_data"
        fee = get_int(pi_data, "application_fee_amount", param=f"{prefix}[application_fee_amount]", minimum=0)
        transfer_data = pi_data.get("transfer_data") or {}
        if not isinstance(transfer_data, dict):
            raise invalid_request(
                f"Invalid object: {prefix}[transfer_data]", param=f"{prefix}[transfer_data]"
            )
        check_allowed(transfer_data, {"destination", "amount"}, f"{prefix}[transfer_data]")
        if "amount" in transfer_data:
            raise invalid_request(
                "The embedded Stripe supports `transfer_data[destination]` with `application_fee_amount`, "
                "not `transfer_data[amount]`.",
                param=f"{prefix}[transfer_data][amount]",
            )
        destination = get_str(transfer_data, "destination", param=f"{prefix}[transfer_data][destination]")
        if transfer_data and not destination:
            raise missing_param(f"{prefix}[transfer_data][destination]")
        on_behalf_of = get_str(pi_data, "on_behalf_of", param=f"{prefix}[on_behalf_of]")
        if fee is not None and not destination and not on_behalf_of:
            raise invalid_request(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct "
                "payment (using an OAuth key or Stripe-Account header) or destination payment (using "
                "`transfer_data[destination]`).",
                param=f"{prefix}[application_fee_amount]",
            )
        if on_behalf_of:
            self._require_account(on_behalf_of, f"{prefix}[on_behalf_of]")
            if destination != on_behalf_of:
                raise invalid_request(
                    "The embedded Stripe supports `on_behalf_of` with a destination charge only, and it "
                    "must equal `transfer_data[destination]`.",
                    param=f"{prefix}[on_behalf_of]",
                )
        if destination:
            account = self._require_account(destination, f"{prefix}[transfer_data][destination]")
            if not self.accounts.transfers_active(account):
                raise invalid_request(
                    "Your destination account needs to have at least one of the following capabilities "
                    "enabled: transfers, crypto_transfers, legacy_payments",
                    param=f"{prefix}[transfer_data][destination]",
                    code="insufficient_capabilities_for_transfer",
                )
        if fee is not None and fee > amount:
            raise invalid_request(
                f"The application fee ({fee}) must be less than or equal to the amount of the payment ({amount}).",
                param=f"{prefix}[application_fee_amount]",
            )
        return {
            "application_fee_amount": fee,
            "destination": destination,
            "on_behalf_of": on_behalf_of,
            "transfer_group": get_str(pi_data, "transfer_group", param=f"{prefix}[transfer_group]"),
        }

    def _require_account(self, account_id: str, param: str) -> Record:
        account = self.accounts.get(account_id)
        if account is None:
            raise invalid_request(
                f"No such destination: '{account_id}'", param=param, code="resource_missing"
            )
        return account

    def settle_charge(
        self, charge: Record, *, available_at_once: bool, request: RequestInfo = NO_REQUEST
    ) -> None:
        """Book a succeeded platform charge (in the payment's transaction).

        The platform gets a ``charge`` balance transaction (amount, Stripe fee,
        net). For a destination charge (``charge.transfer_data``) it also
        creates the Transfer of ``amount - application_fee_amount`` (with a
        ``py_...`` payment on the account), the ApplicationFee, and their
        balance transactions; it emits ``transfer.created`` and
        ``application_fee.created`` (platform) and ``payment.created`` (on the
        account).
        """
        data = charge.data
        now = self.store.now()
        available_on = now if available_at_once else now + AVAILABILITY_DAYS * DAY
        txn = self.add_transaction(
            None,
            "charge",
            data["amount"],
            data["currency"],
            charge.id,
            fee=processing_fee(data["amount"]),
            available_on=available_on,
            description=data["description"],
        )
        data["balance_transaction"] = txn.id
        transfer_data = data.get("transfer_data")
        if transfer_data:
            fee = data["application_fee_amount"] or 0
            account = self.accounts.require(transfer_data["destination"])
            transfer = self._transfer(
                account,
                data["amount"] - fee,
                data["currency"],
                source_transaction=charge.id,
                available_on=available_on,
                metadata={},
                transfer_group=data.get("transfer_group"),
                description=None,
                request=request,
            )
            data["transfer"] = transfer.id
            if data["application_fee_amount"] is not None:
                fee_record = self._application_fee(
                    charge, account.id, fee, transfer.data["destination_payment"]
                )
                data["application_fee"] = fee_record.id
                self.store.emit("application_fee.created", fee_record.data, request)
        self.store.update(charge)

    def _transfer(
        self,
        account: Record,
        amount: int,
        currency: str,
        *,
        source_transaction: str | None,
        available_on: int | None,
        metadata: dict[str, str],
        transfer_group: str | None,
        description: str | None,
        request: RequestInfo,
    ) -> Record:
        now = self.store.now()
        transfer_id = new_id("tr", 24)
        payment_id = new_id("py", 24)
        platform_txn = self.add_transaction(
            None,
            "transfer",
            -amount,
            currency,
            transfer_id,
            available_on=available_on if source_transaction else now,
        )
        account_available_on = now
        if available_on is not None and available_on > now:
            delay = account.data["settings"]["payouts"]["schedule"].get("delay_days", AVAILABILITY_DAYS)
            account_available_on = max(available_on, now + delay * DAY)
        account_txn = self.add_transaction(
            account.id, "payment", amount, currency, payment_id, available_on=account_available_on
        )
        data = {
            "id": transfer_id,
            "object": TRANSFER,
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": platform_txn.id,
            "created": now,
            "currency": currency,
            "description": description,
            "destination": account.id,
            "destination_payment": payment_id,
            "livemode": False,
            "metadata": metadata,
            "reversals": _list(f"/v1/transfers/{transfer_id}/reversals", []),
            "reversed": False,
            "source_transaction": source_transaction,
            "source_type": "card",
            "transfer_group": transfer_group,
        }
        record = self.store.insert(TRANSFER, data, lookup=account.id)
        payment = {
            "id": payment_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": account_txn.id,
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "captured": True,
            "created": now,
            "currency": currency,
            "customer": None,
            "description": None,
            "destination": None,
            "disputed": False,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": None,
            "paid": True,
            "payment_intent": None,
            "payment_method": None,
            "payment_method_details": {"stripe_account": {}, "type": "stripe_account"},
            "receipt_email": None,
            "refunded": False,
            "source_transfer": transfer_id,
            "status": "succeeded",
            "transfer": None,
            "transfer_data": None,
            "transfer_group": transfer_group,
        }
        self.store.insert("charge", payment, internal={"account": account.id}, lookup=f"account:{account.id}")
        self.store.emit("transfer.created", data, request)
        self.store.emit("payment.created", payment, NO_REQUEST, account=account.id)
        return record

    def _application_fee(self, charge: Record, account_id: str, amount: int, payment_id: str) -> Record:
        fee_id = new_id("fee", 24)
        data = {
            "id": fee_id,
            "object": APPLICATION_FEE,
            "account": account_id,
            "amount": amount,
            "amount_refunded": 0,
            "application": None,
            "balance_transaction": None,
            "charge": charge.id,
            "created": self.store.now(),
            "currency": charge.data["currency"],
            "fee_source": {"charge": charge.id, "type": "charge"},
            "livemode": False,
            "originating_transaction": payment_id,
            "refunded": False,
            "refunds": _list(f"/v1/application_fees/{fee_id}/refunds", []),
        }
        return self.store.insert(APPLICATION_FEE, data, lookup=charge.id)

    # -- refunds and disputes of platform charges -----------------------------

    def book_refund(
        self,
        charge: Record,
        refund: dict[str, Any],
        *,
        reverse_transfer: bool,
        refund_application_fee: bool,
        request: RequestInfo,
    ) -> None:
        """Book a refund of a platform charge, reversing its transfer and fee when asked.

        The transfer reversal is ``refund * transfer.amount / charge.amount`` and
        the fee refund ``refund * application_fee_amount / charge.amount``, each
        rounded half up to a cent and capped at what is left; the refund that
        empties the charge takes everything left, so the parts always add up to
        the whole. The reversal moves money back (platform ``transfer_refund``
        +, account ``payment_refund`` -); the fee refund only records the
        platform giving up that share (the customer's refund already came out
        of the platform's balance).
        """
        cdata = charge.data
        txn = self.add_transaction(None, "refund", -refund["amount"], refund["currency"], refund["id"])
        refund["balance_transaction"] = txn.id
        last = cdata["amount_refunded"] >= cdata["amount"]
        if reverse_transfer and cdata.get("transfer"):
            transfer = self.store.require(TRANSFER, cdata["transfer"])
            left = transfer.data["amount"] - transfer.data["amount_reversed"]
            share = (
                left
                if last
                else min(left, proportional(refund["amount"], cdata["amount"], transfer.data["amount"]))
            )
            if share > 0:
                reversal = self._reverse(transfer, share, {}, source_refund=refund["id"], request=request)
                refund["transfer_reversal"] = reversal["id"]
        if refund_application_fee and cdata.get("application_fee"):
            fee = self.store.require(APPLICATION_FEE, cdata["application_fee"])
            left = fee.data["amount"] - fee.data["amount_refunded"]
            share = (
                left
                if last
                else min(left, proportional(refund["amount"], cdata["amount"], fee.data["amount"]))
            )
            if share > 0:
                self._refund_fee(fee, share, {}, book=False, request=request)

    def book_dispute(self, charge: Record) -> dict[str, Any]:
        """Debit the platform for a dispute: amount plus the dispute fee. Returns the transaction."""
        data = charge.data
        return self.add_transaction(
            None, "adjustment", -data["amount"], data["currency"], charge.id, fee=DISPUTE_FEE
        ).data

    # -- transfers API ---------------------------------------------------------

    def create_transfer(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/transfers``: platform funds to a connected account."""
        check_allowed(
            params,
            {
                "amount",
                "currency",
                "destination",
                "source_transaction",
                "metadata",
                "transfer_group",
                "description",
                "expand",
            },
        )
        amount = get_int(params, "amount", required=True, minimum=1)
        currency = get_str(params, "currency", required=True)
        destination = get_str(params, "destination", required=True)
        assert amount is not None and currency is not None and destination is not None
        source = get_str(params, "source_transaction")
        metadata = get_metadata(params)
        with self.store.db.transaction():
            account = self.accounts.get(destination)
            if account is None:
                raise invalid_request(
                    f"No such destination: '{destination}'", param="destination", code="resource_missing"
                )
            if not self.accounts.transfers_active(account):
                raise invalid_request(
                    "Your destination account needs to have at least one of the following capabilities "
                    "enabled: transfers, crypto_transfers, legacy_payments",
                    param="destination",
                    code="insufficient_capabilities_for_transfer",
                )
            available_on = None
            if source:
                charge = self.store.require("charge", source, param="source_transaction")
                if charge.internal.get("account") or charge.data["status"] != "succeeded":
                    raise invalid_request(
                        f"The source_transaction {source} is not a succeeded charge of the platform.",
                        param="source_transaction",
                    )
                if charge.data["currency"] != currency:
                    raise invalid_request(
                        "The currency of source_transaction's balance transaction must match the transfer "
                        f"currency ({currency}).",
                        param="currency",
                    )
                txn = self.store.require(BALANCE_TRANSACTION, charge.data["balance_transaction"])
                # What reversals took back may be transferred again (a won dispute's return).
                moved = sum(
                    t.data["amount"] - t.data["amount_reversed"]
                    for t in self.store.db.find(TRANSFER, destination)
                    if t.data["source_transaction"] == source
                )
                if amount > txn.data["net"] - moved:
                    raise invalid_request(
                        "The transfer amount exceeds what is left of the source_transaction "
                        f"({format_amount(txn.data['net'] - moved, currency)}).",
                        param="amount",
                        code="amount_too_large",
                    )
                available_on = txn.data["available_on"]
            else:
                available = next(
                    (b["amount"] for b in self.balance(None)["available"] if b["currency"] == currency), 0
                )
                if amount > available:
                    raise invalid_request(
                        "You have insufficient available funds in your Stripe account. Try adding funds directly "
                        "to your available balance by creating Charges using the 4000000000000077 test card.",
                        code="balance_insufficient",
                    )
            record = self._transfer(
                account,
                amount,
                currency,
                source_transaction=source,
                available_on=available_on,
                metadata=metadata,
                transfer_group=get_str(params, "transfer_group"),
                description=get_str(params, "description"),
                request=request,
            )
            return self.transfer_view(record)

    def transfer_view(self, record: Record) -> dict[str, Any]:
        """Return a transfer with its reversals list."""
        data = dict(record.data)
        reversals = [r.data for r in self.store.db.find(TRANSFER_REVERSAL, record.id)]
        data["reversals"] = _list(f"/v1/transfers/{record.id}/reversals", reversals)
        return data

    def retrieve_transfer(self, transfer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/transfers/{id}``."""
        check_allowed(params, {"expand"})
        return self.transfer_view(self.store.require(TRANSFER, transfer_id, param="transfer"))

    def update_transfer(
        self, transfer_id: str, params: dict[str, Any], request: RequestInfo
    ) -> dict[str, Any]:
        """``POST /v1/transfers/{id}`` (``metadata``, ``description``)."""
        check_allowed(params, {"metadata", "description", "expand"})
        with self.store.db.transaction():
            record = self.store.require(TRANSFER, transfer_id, param="transfer")
            before = copy.deepcopy(record.data)
            record.data["metadata"] = update_metadata(record.data["metadata"], params)
            if "description" in params:
                record.data["description"] = get_str(params, "description")
            self.store.update(record)
            view = self.transfer_view(record)
            self.store.emit("transfer.updated", view, request, previous=changes_since(before, record.data))
            return view

    def list_transfers(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/transfers`` (filters ``destination``, ``transfer_group``)."""
        check_allowed(
            params,
            {
                "limit",
                "starting_after",
                "ending_before",
                "destination",
                "transfer_group",
                "created",
                "expand",
            },
        )
        destination = get_str(params, "destination")
        group = get_str(params, "transfer_group")
        records, has_more = self.store.page_of(
            TRANSFER,
            params,
            lookups=[destination] if destination else None,
            accept=(lambda r: r.data["transfer_group"] == group) if group else None,
        )
        return [self.transfer_view(r) for r in records], has_more

    def create_reversal(
        self, transfer_id: str, params: dict[str, Any], request: RequestInfo
    ) -> dict[str, Any]:
        """``POST /v1/transfers/{id}/reversals`` (``amount`` defaults to what remains)."""
        check_allowed(params, {"amount", "metadata", "description", "refund_application_fee", "expand"})
        amount = get_int(params, "amount", minimum=1)
        metadata = get_metadata(params)
        with self.store.db.transaction():
            transfer = self.store.require(TRANSFER, transfer_id, param="id")
            left = transfer.data["amount"] - transfer.data["amount_reversed"]
            if left <= 0:
                raise invalid_request(
                    f"Transfer {transfer_id} has already been fully reversed.",
                    code="transfer_already_reversed",
                )
            if amount is None:
                amount = left
            if amount > left:
                currency = transfer.data["currency"]
                raise invalid_request(
                    f"Transfer reversal amount ({format_amount(amount, currency)}) is greater than the amount "
                    f"remaining on the transfer ({format_amount(left, currency)}).",
                    param="amount",
                    code="amount_too_large",
                )
            return self._reverse(transfer, amount, metadata, source_refund=None, request=request)

    def _reverse(
        self,
        transfer: Record,
        amount: int,
        metadata: dict[str, str],
        *,
        source_refund: str | None,
        request: RequestInfo,
    ) -> dict[str, Any]:
        tdata = transfer.data
        reversal_id = new_id("trr", 24)
        payment_refund_id = new_id("pyr", 24)
        txn = self.add_transaction(None, "transfer_refund", amount, tdata["currency"], reversal_id)
        self.add_transaction(
            tdata["destination"], "payment_refund", -amount, tdata["currency"], payment_refund_id
        )
        data = {
            "id": reversal_id,
            "object": TRANSFER_REVERSAL,
            "amount": amount,
            "balance_transaction": txn.id,
            "created": self.store.now(),
            "currency": tdata["currency"],
            "destination_payment_refund": payment_refund_id,
            "metadata": metadata,
            "source_refund": source_refund,
            "transfer": transfer.id,
        }
        self.store.insert(TRANSFER_REVERSAL, data, lookup=transfer.id)
        tdata["amount_reversed"] += amount
        tdata["reversed"] = tdata["amount_reversed"] >= tdata["amount"]
        payment = self.store.get("charge", tdata["destination_payment"])
        if payment is not None:
            payment.data["amount_refunded"] += amount
            payment.data["refunded"] = payment.data["amount_refunded"] >= payment.data["amount"]
            self.store.update(payment)
        self.store.update(transfer)
        self.store.emit("transfer.reversed", self.transfer_view(transfer), request)
        return data

    def list_reversals(self, transfer_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """``GET /v1/transfers/{id}/reversals`` (newest first)."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "expand"})
        self.store.require(TRANSFER, transfer_id, param="id")
        return [r.data for r in self.store.db.find(TRANSFER_REVERSAL, transfer_id)]

    def retrieve_reversal(self, transfer_id: str, reversal_id: str) -> dict[str, Any]:
        """``GET /v1/transfers/{id}/reversals/{reversal}``."""
        record = self.store.require(TRANSFER_REVERSAL, reversal_id)
        if record.data["transfer"] != transfer_id:
            self.store.require(TRANSFER_REVERSAL, None)
        return record.data

    # -- application fees ------------------------------------------------------

    def fee_view(self, record: Record) -> dict[str, Any]:
        """Return an application fee with its refunds list."""
        data = dict(record.data)
        refunds = [r.data for r in self.store.db.find(FEE_REFUND, record.id)]
        data["refunds"] = _list(f"/v1/application_fees/{record.id}/refunds", refunds)
        return data

    def retrieve_fee(self, fee_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/application_fees/{id}``."""
        check_allowed(params, {"expand"})
        return self.fee_view(self.store.require(APPLICATION_FEE, fee_id, param="id"))

    def list_fees(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/application_fees`` (filter ``charge``)."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "charge", "created", "expand"})
        charge = get_str(params, "charge")
        records, has_more = self.store.page_of(
            APPLICATION_FEE,
            params,
            lookups=[charge] if charge else None,
        )
        return [self.fee_view(r) for r in records], has_more

    def create_fee_refund(self, fee_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/application_fees/{id}/refunds``: the platform gives (part of) its fee to the account."""
        check_allowed(params, {"amount", "metadata", "expand"})
        amount = get_int(params, "amount", minimum=1)
        metadata = get_metadata(params)
        with self.store.db.transaction():
            fee = self.store.require(APPLICATION_FEE, fee_id, param="id")
            left = fee.data["amount"] - fee.data["amount_refunded"]
            if left <= 0:
                raise invalid_request(
                    f"Application fee {fee_id} has already been refunded.", code="charge_already_refunded"
                )
            if amount is None:
                amount = left
            if amount > left:
                currency = fee.data["currency"]
                raise invalid_request(
                    f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded amount on "
                    f"the application fee ({format_amount(left, currency)})",
                    param="amount",
                    code="amount_too_large",
                )
            return self._refund_fee(fee, amount, metadata, book=True, request=request)

    def _refund_fee(
        self, fee: Record, amount: int, metadata: dict[str, str], *, book: bool, request: RequestInfo
    ) -> dict[str, Any]:
        refund_id = new_id("fr", 24)
        txn_id = None
        if book:
            currency = fee.data["currency"]
            txn_id = self.add_transaction(None, "application_fee_refund", -amount, currency, refund_id).id
            self.add_transaction(fee.data["account"], "application_fee_refund", amount, currency, refund_id)
        data = {
            "id": refund_id,
            "object": FEE_REFUND,
            "amount": amount,
            "balance_transaction": txn_id,
            "created": self.store.now(),
            "currency": fee.data["currency"],
            "fee": fee.id,
            "metadata": metadata,
        }
        self.store.insert(FEE_REFUND, data, lookup=fee.id)
        fee.data["amount_refunded"] += amount
        fee.data["refunded"] = fee.data["amount_refunded"] >= fee.data["amount"]
        self.store.update(fee)
        self.store.emit("application_fee.refunded", self.fee_view(fee), request)
        return data

    def list_fee_refunds(self, fee_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """``GET /v1/application_fees/{id}/refunds`` (newest first)."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "expand"})
        self.store.require(APPLICATION_FEE, fee_id, param="id")
        return [r.data for r in self.store.db.find(FEE_REFUND, fee_id)]

    # -- charges of an account ---------------------------------------------------

    def list_charges(self, owner: str | None, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/charges``: the platform's charges, or (Stripe-Account) the account's payments."""
        check_allowed(
            params,
            {
                "limit",
                "starting_after",
                "ending_before",
                "payment_intent",
                "created",
                "expand",
                "transfer_group",
            },
        )
        pi_id = get_str(params, "payment_intent")
        group = get_str(params, "transfer_group")
        created = created_filter(params)

        def accept(record: Record) -> bool:
            return (
                record.internal.get("account") == owner
                and (not pi_id or record.data["payment_intent"] == pi_id)
                and (not group or record.data.get("transfer_group") == group)
                and created(record.created)
            )

        records, has_more = self.store.page_of(
            "charge",
            params,
            accept=accept,
        )
        return [r.data for r in records], has_more

    def retrieve_charge(self, charge_id: str, owner: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/charges/{id}`` of the caller (platform charge, or the account's ``py_...``)."""
        check_allowed(params, {"expand"})
        return self.expand_charge(
            self._owned("charge", charge_id, owner, param="charge").data, get_expand(params)
        )

    #: What a charge's ``expand[]`` may name, and the object kind each id points to.
    CHARGE_EXPANDABLE = {
        "balance_transaction": BALANCE_TRANSACTION,
        "transfer": TRANSFER,
        "application_fee": APPLICATION_FEE,
    }

    def expand_charge(self, charge: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        """A charge with the ids ``expand`` names replaced by their objects; anything else named is
        refused as Stripe does ("This property cannot be expanded").

        ``refunds`` is one of Stripe's includable fields (not sent since API 2022-11-15
        unless expanded): the list of the charge's refunds, newest first.
        """
        unknown = sorted(expand - set(self.CHARGE_EXPANDABLE) - {"refunds"})
        if unknown:
            raise invalid_request(f"This property cannot be expanded ({unknown[0]}).", param="expand")
        data = dict(charge)
        for field in expand - {"refunds"}:
            if data.get(field):
                record = self.store.get(self.CHARGE_EXPANDABLE[field], data[field])
                data[field] = record.data if record else None
        if "refunds" in expand:
            refunds, has_more = self.store.db.page(
                "refund", limit=100, accept=lambda r: r.data["charge"] == charge["id"]
            )
            data["refunds"] = {
                "object": "list",
                "data": [r.data for r in refunds],
                "has_more": has_more,
                "url": f"/v1/charges/{charge['id']}/refunds",
            }
        return data

    # -- payouts -----------------------------------------------------------------

    def retrieve_payout(self, payout_id: str, owner: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/payouts/{id}``."""
        check_allowed(params, {"expand"})
        return self._owned(PAYOUT, payout_id, owner, param="payout").data

    def list_payouts(self, owner: str | None, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/payouts`` (filter ``status``)."""
        check_allowed(
            params,
            {
                "limit",
                "starting_after",
                "ending_before",
                "status",
                "created",
                "arrival_date",
                "destination",
                "expand",
            },
        )
        status = get_str(params, "status")
        records, has_more = self.store.page_of(
            PAYOUT,
            params,
            lookups=[owner or PLATFORM],
            accept=(lambda r: r.data["status"] == status) if status else None,
        )
        return [r.data for r in records], has_more

    # -- timed work ----------------------------------------------------------------

    def run_due(self) -> int:
        """Do what is due now: release pending funds (``balance.available``), pay out
        accounts on their schedule (``payout.created``), settle payouts that arrived
        (``payout.paid`` or ``payout.failed``).

        Returns:
            How many things changed.
        """
        return self._release_funds() + self._create_payouts() + self._settle_payouts()

    def _release_funds(self) -> int:
        now = self.store.now()
        rows = (
            self.store.db.connection()
            .execute(
                "SELECT DISTINCT lookup FROM objects WHERE type = ? AND json_extract(data, '$.status') = 'pending'"
                " AND json_extract(data, '$.available_on') <= ?",
                (BALANCE_TRANSACTION, now),
            )
            .fetchall()
        )
        changed = 0
        for row in rows:
            owner = None if row["lookup"] == PLATFORM else row["lookup"]
            with self.store.db.transaction() as conn:
                due = conn.execute(
                    "SELECT id FROM objects WHERE type = ? AND lookup = ? AND json_extract(data, '$.status') = 'pending'"
                    " AND json_extract(data, '$.available_on') <= ?",
                    (BALANCE_TRANSACTION, row["lookup"], now),
                ).fetchall()
                for txn_row in due:
                    txn = self.store.require(BALANCE_TRANSACTION, txn_row["id"])
                    txn.data["status"] = "available"
                    self.store.update(txn)
                    changed += 1
                if due:
                    self.store.emit("balance.available", self.balance(owner), NO_REQUEST, account=owner)
        return changed

    def _create_payouts(self) -> int:
        now = self.store.now()
        created = 0
        # Only accounts due on their schedule that hold available funds not yet paid out: the
        # sweeper runs every second, so it must not take the write lock for nothing.
        due_accounts = (
            self.store.db.connection()
            .execute(
                "SELECT a.id FROM objects a WHERE a.type = ? AND json_extract(a.data, '$.payouts_enabled') = 1"
                " AND json_extract(a.data, '$.settings.payouts.schedule.interval') != 'manual'"
                " AND COALESCE(json_extract(a.internal, '$.next_payout_at'), 0) <= ?"
                " AND EXISTS (SELECT 1 FROM objects t WHERE t.type = ? AND t.lookup = a.id"
                " AND json_extract(t.data, '$.status') = 'available'"
                " AND json_extract(t.internal, '$.payout') IS NULL)",
                (ACCOUNT, now, BALANCE_TRANSACTION),
            )
            .fetchall()
        )
        for account_row in due_accounts:
            with self.store.db.transaction():
                account = self.accounts.get(account_row["id"])
                if account is None or not account.data["payouts_enabled"]:
                    continue
                schedule = account.data["settings"]["payouts"]["schedule"]
                interval = schedule["interval"]
                if interval == "manual" or account.internal.get("next_payout_at", 0) > now:
                    continue
                paid_any = False
                for entry in self.balance(account.id)["available"]:
                    if entry["amount"] > 0:
                        self._payout(account, entry["amount"], entry["currency"])
                        paid_any = True
                        created += 1
                if paid_any:
                    period = {"daily": DAY, "weekly": 7 * DAY, "monthly": 30 * DAY}[interval]
                    account.internal["next_payout_at"] = now + period
                    self.store.update(account)
        return created

    def _payout(self, account: Record, amount: int, currency: str) -> Record:
        now = self.store.now()
        payout_id = new_id("po", 24)
        txn = self.add_transaction(account.id, "payout", -amount, currency, payout_id)
        txn.internal["payout"] = payout_id
        self.store.update(txn)
        # The payout settles every available transaction not yet in a payout.
        for row in (
            self.store.db.connection()
            .execute(
                "SELECT id FROM objects WHERE type = ? AND lookup = ? AND json_extract(internal, '$.payout') IS NULL"
                " AND json_extract(data, '$.status') = 'available' AND json_extract(data, '$.currency') = ?",
                (BALANCE_TRANSACTION, account.id, currency),
            )
            .fetchall()
        ):
            included = self.store.require(BALANCE_TRANSACTION, row["id"])
            included.internal["payout"] = payout_id
            self.store.update(included)
        banks = account.data["external_accounts"]["data"]
        data = {
            "id": payout_id,
            "object": PAYOUT,
            "amount": amount,
            "application_fee": None,
            "application_fee_amount": None,
            "arrival_date": now + PAYOUT_TRANSIT_SECONDS,
            "automatic": True,
            "balance_transaction": txn.id,
            "created": now,
            "currency": currency,
            "description": "STRIPE PAYOUT",
            "destination": banks[0]["id"] if banks else None,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "original_payout": None,
            "payout_method": None,
            "reconciliation_status": "not_applicable",
            "reversed_by": None,
            "source_type": "card",
            "statement_descriptor": None,
            "status": "in_transit",
            "trace_id": {"status": "pending", "value": None},
            "type": "bank_account",
        }
        record = self.store.insert(PAYOUT, data, internal={"account": account.id}, lookup=account.id)
        self.store.emit("payout.created", data, NO_REQUEST, account=account.id)
        return record

    def _settle_payouts(self) -> int:
        now = self.store.now()
        rows = (
            self.store.db.connection()
            .execute(
                "SELECT id FROM objects WHERE type = ? AND json_extract(data, '$.status') = 'in_transit'"
                " AND json_extract(data, '$.arrival_date') <= ?",
                (PAYOUT, now),
            )
            .fetchall()
        )
        for row in rows:
            with self.store.db.transaction():
                payout = self.store.require(PAYOUT, row["id"])
                data = payout.data
                if data["status"] != "in_transit":
                    continue
                owner = payout.internal["account"]
                before = copy.deepcopy(data)
                account = self.accounts.get(owner)
                failure = self.accounts.payout_failure(account) if account else None
                if failure:
                    code, message = failure
                    txn = self.add_transaction(
                        owner, "payout_failure", data["amount"], data["currency"], payout.id
                    )
                    data.update(
                        status="failed",
                        failure_code=code,
                        failure_message=message,
                        failure_balance_transaction=txn.id,
                        trace_id={"status": "unsupported", "value": None},
                    )
                    self.store.update(payout)
                    self.store.emit(
                        "payout.updated",
                        data,
                        NO_REQUEST,
                        account=owner,
                        previous=changes_since(before, data),
                    )
                    self.store.emit("payout.failed", data, NO_REQUEST, account=owner)
                    if account is not None:
                        self.accounts.bank_account_failed(account)
                else:
                    data.update(
                        status="paid",
                        reconciliation_status="completed",
                        trace_id={"status": "supported", "value": f"TRACE{payout.id[-10:].upper()}"},
                    )
                    self.store.update(payout)
                    self.store.emit(
                        "payout.updated",
                        data,
                        NO_REQUEST,
                        account=owner,
                        previous=changes_since(before, data),
                    )
                    self.store.emit("payout.paid", data, NO_REQUEST, account=owner)
        return len(rows)
