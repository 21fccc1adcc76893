"""Connect accounts (Express), Account Links, login links and hosted onboarding.

Accounts are created with ``type=express`` or the controller properties
(``controller[stripe_dashboard][type]=express``). A new account has
``details_submitted``, ``charges_enabled`` and ``payouts_enabled`` false and
``requirements.currently_due`` listing what onboarding asks for. The seller
completes onboarding on the hosted page an Account Link points to (or the
``/_local/accounts/{id}/onboard`` helper does it for tests); every change of
those flags or requirements emits ``account.updated`` on the account.

Test-mode inputs of the onboarding form (as Stripe's test mode documents them):

* date of birth ``1900-01-01``: the account is rejected
  (``requirements.disabled_reason = "rejected.listed"``, charges and payouts
  disabled, capabilities inactive);
* ID number ``111111111`` (or last four ``1111``): identity not matched, so
  ``individual.verification.document`` stays currently due; charges are
  enabled, payouts are not;
* bank account numbers (routing ``110000000``): ``000123456789`` pays out;
  ``000111111116`` payouts fail with ``no_account``, ``000111111113``
  ``account_closed``, ``000222222227`` ``insufficient_funds``,
  ``000333333335`` ``debit_not_authorized``;
* anything else valid completes onboarding.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .db import Record
from .errors import StripeLocalError, invalid_request, missing_param, resource_missing
from .ids import new_id, random_token
from .params import (
    check_allowed,
    created_filter,
    get_bool,
    get_dict,
    get_int,
    get_metadata,
    get_str,
    update_metadata,
)
from .store import NO_REQUEST, RequestInfo, Store, changes_since

ACCOUNT = "account"
#: Seconds from an account's opening to its first automatic payout (one day).
FIRST_PAYOUT_DELAY_SECONDS = 86_400
ACCOUNT_LINK = "account_link"
LOGIN_LINK = "login_link"

#: Seconds an Account Link or a login link can be opened (Stripe: a few minutes).
LINK_TTL_SECONDS = 300
#: Seconds an opened onboarding form stays submittable.
ONBOARDING_FORM_TTL_SECONDS = 3600

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: What onboarding asks an individual US Express seller for (Stripe's requirement names).
ONBOARDING_REQUIREMENTS: tuple[str, ...] = (
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "individual.address.city",
    "individual.address.line1",
    "individual.address.postal_code",
    "individual.address.state",
    "individual.dob.day",
    "individual.dob.month",
    "individual.dob.year",
    "individual.email",
    "individual.first_name",
    "individual.last_name",
    "individual.phone",
    "individual.ssn_last_4",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)

#: Test-mode magic inputs (see the module docstring).
REJECTED_DOB = "1900-01-01"
DOCUMENT_REQUIRED_ID_NUMBERS = frozenset({"111111111", "1111"})
PAYOUT_FAILURES: dict[str, tuple[str, str]] = {
    "000111111116": (
        "no_account",
        "The bank account details on file are probably incorrect. No bank account could be located with those details.",
    ),
    "000111111113": ("account_closed", "The bank account has been closed."),
    "000222222227": ("insufficient_funds", "Your Stripe account has insufficient funds to cover the payout."),
    "000333333335": ("debit_not_authorized", "Debit transactions are not approved on the bank account."),
}
TEST_ROUTING_NUMBER = "110000000"
TEST_ACCOUNT_NUMBER = "000123456789"

COUNTRY_CURRENCY = {
    "US": "usd",
    "CA": "cad",
    "GB": "gbp",
    "AU": "aud",
    "NZ": "nzd",
    "SG": "sgd",
    "CH": "chf",
    "JP": "jpy",
    **{c: "eur" for c in ("AT", "BE", "DE", "ES", "FI", "FR", "IE", "IT", "LU", "NL", "PT")},
}
BUSINESS_TYPES = ("individual", "company", "non_profit", "government_entity")
CAPABILITIES = ("card_payments", "transfers")
PAYOUT_INTERVALS = ("manual", "daily", "weekly", "monthly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Days before funds become available, the default of a US account's payout schedule.
DEFAULT_DELAY_DAYS = 2

CREATE_PARAMS = {
    "type",
    "controller",
    "country",
    "email",
    "capabilities",
    "metadata",
    "business_type",
    "business_profile",
    "default_currency",
    "settings",
    "expand",
}
UPDATE_PARAMS = {
    "email",
    "metadata",
    "business_type",
    "business_profile",
    "settings",
    "capabilities",
    "expand",
}
BUSINESS_PROFILE_PARAMS = {
    "mcc",
    "name",
    "product_description",
    "support_email",
    "support_phone",
    "support_url",
    "url",
}

Outcome = Literal["complete", "document_required", "rejected"]


def account_invalid(account_id: str, key_hint: str = "") -> StripeLocalError:
    """Stripe's 403 for a ``Stripe-Account`` header naming no connected account of the platform."""
    return StripeLocalError(
        403,
        "invalid_request_error",
        f"The provided key '{key_hint}' does not have access to account '{account_id}' "
        "(or that account does not exist). Application access may have been revoked.",
        code="account_invalid",
    )


def requirements(
    currently_due: list[str] | tuple[str, ...] = (),
    disabled_reason: str | None = None,
    eventually_due: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Return a ``requirements`` hash (also the shape of ``future_requirements``)."""
    due = sorted(currently_due)
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": due,
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": sorted(eventually_due) if eventually_due is not None else list(due),
        "past_due": list(due) if disabled_reason == "requirements.past_due" else [],
        "pending_verification": [],
    }


@dataclass
class OnboardingForm:
    """What the seller enters on the hosted onboarding page.

    ``dob`` is ``YYYY-MM-DD``; ``id_number`` is the full SSN or its last four
    digits. See the module docstring for the test-mode magic values.
    """

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    dob: str = ""
    address_line1: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    id_number: str = ""
    business_url: str = ""
    routing_number: str = ""
    account_number: str = ""
    ip: str = "127.0.0.1"
    user_agent: str = ""

    @classmethod
    def standard(cls, email: str | None = None, **overrides: str) -> OnboardingForm:
        """Return Stripe's standard test data (completes onboarding unless overridden)."""
        form = cls(
            first_name="Jenny",
            last_name="Rosen",
            email=email or "jenny.rosen@example.com",
            phone="0000000000",
            dob="1901-01-01",
            address_line1="address_full_match",
            city="San Francisco",
            state="CA",
            postal_code="94111",
            id_number="000000000",
            business_url="https://accessible.stripe.com",
            routing_number=TEST_ROUTING_NUMBER,
            account_number=TEST_ACCOUNT_NUMBER,
        )
        for key, value in overrides.items():
            if value:
                setattr(form, key, value)
        return form


@dataclass
class OnboardingResult:
    """The result of one onboarding submission.

    Attributes:
        ok: True when the form was accepted (whatever the verification outcome).
        errors: Field name -> message, when ``ok`` is false.
        account: The account after the submission, when accepted.
        outcome: ``complete``, ``document_required`` or ``rejected``.
    """

    ok: bool
    errors: dict[str, str] = field(default_factory=dict)
    account: dict[str, Any] | None = None
    outcome: Outcome | None = None


def validate_onboarding(form: OnboardingForm) -> dict[str, str]:
    """Check the form's fields; return field -> message for each problem."""
    errors: dict[str, str] = {}
    for name, label in (
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("address_line1", "Address"),
        ("city", "City"),
        ("state", "State"),
    ):
        if not getattr(form, name).strip():
            errors[name] = f"{label} is required."
    if not EMAIL_PATTERN.match(form.email.strip()):
        errors["email"] = "Enter a valid email address."
    if len(re.sub(r"\D", "", form.phone)) < 10:
        errors["phone"] = "Enter a 10-digit phone number."
    if not re.fullmatch(r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", form.dob.strip()):
        errors["dob"] = "Enter your date of birth as YYYY-MM-DD."
    if not re.fullmatch(r"\d{5}", form.postal_code.strip()):
        errors["postal_code"] = "Enter a 5-digit ZIP code."
    if not re.fullmatch(r"\d{4}|\d{9}", re.sub(r"[\s-]", "", form.id_number)):
        errors["id_number"] = "Enter the last 4 digits of your SSN, or all 9."
    if not re.fullmatch(r"https?://[^\s/]+\.[^\s]+", form.business_url.strip()):
        errors["business_url"] = "Enter your business website, e.g. https://example.com."
    if not re.fullmatch(r"\d{9}", form.routing_number.strip()):
        errors["routing_number"] = "Routing number must have 9 digits."
    if not re.fullmatch(r"\d{4,17}", form.account_number.strip()):
        errors["account_number"] = "Account number must have 4 to 17 digits."
    return errors


class Accounts:
    """Connected account operations.

    Args:
        store: The object store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- lookups -----------------------------------------------------------

    def get(self, account_id: str) -> Record | None:
        """Return the stored account, or None."""
        return self.store.get(ACCOUNT, account_id)

    def require(self, account_id: str | None, *, param: str = "account") -> Record:
        """Return the account or raise Stripe's 404."""
        return self.store.require(ACCOUNT, account_id, param=param)

    @staticmethod
    def transfers_active(record: Record) -> bool:
        """Tell whether the account can receive transfers (destination charges)."""
        return record.data["capabilities"].get("transfers") == "active"

    # -- parameters --------------------------------------------------------

    def _capabilities(self, params: dict[str, Any], current: dict[str, str]) -> dict[str, str]:
        raw = get_dict(params, "capabilities")
        caps = dict(current)
        for name, value in raw.items():
            prefix = f"capabilities[{name}]"
            if name not in CAPABILITIES:
                raise invalid_request(
                    f"The embedded Stripe supports the capabilities {', '.join(CAPABILITIES)}; "
                    f"`{name}` is not one of them.",
                    param=prefix,
                )
            if not isinstance(value, dict):
                raise invalid_request(f"Invalid object: {prefix}", param=prefix)
            check_allowed(value, {"requested"}, prefix)
            requested = get_bool(value, "requested", param=f"{prefix}[requested]")
            if requested and name not in caps:
                caps[name] = "inactive"
            elif requested is False:
                caps.pop(name, None)
        return caps

    @staticmethod
    def _payout_schedule(params: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        settings = get_dict(params, "settings")
        check_allowed(settings, {"payouts"}, "settings")
        payouts = get_dict(settings, "payouts", param="settings[payouts]")
        check_allowed(
            payouts, {"schedule", "statement_descriptor", "debit_negative_balances"}, "settings[payouts]"
        )
        raw = get_dict(payouts, "schedule", param="settings[payouts][schedule]")
        prefix = "settings[payouts][schedule]"
        check_allowed(raw, {"interval", "delay_days", "weekly_anchor", "monthly_anchor"}, prefix)
        schedule = dict(current)
        interval = get_str(raw, "interval", param=f"{prefix}[interval]")
        if interval is not None:
            if interval not in PAYOUT_INTERVALS:
                raise invalid_request(
                    f"Invalid interval: must be one of {', '.join(PAYOUT_INTERVALS)}",
                    param=f"{prefix}[interval]",
                )
            schedule = {"delay_days": schedule.get("delay_days", DEFAULT_DELAY_DAYS), "interval": interval}
        if "delay_days" in raw:
            if raw["delay_days"] == "minimum":
                schedule["delay_days"] = DEFAULT_DELAY_DAYS
            else:
                delay = get_int(
                    raw, "delay_days", param=f"{prefix}[delay_days]", minimum=DEFAULT_DELAY_DAYS, maximum=365
                )
                schedule["delay_days"] = delay
        anchor = get_str(raw, "weekly_anchor", param=f"{prefix}[weekly_anchor]")
        if schedule["interval"] == "weekly":
            if anchor is None and "weekly_anchor" not in schedule:
                raise missing_param(f"{prefix}[weekly_anchor]")
            if anchor is not None:
                if anchor not in WEEKDAYS:
                    raise invalid_request(
                        f"Invalid weekly_anchor: {anchor}", param=f"{prefix}[weekly_anchor]"
                    )
                schedule["weekly_anchor"] = anchor
        month_anchor = get_int(
            raw, "monthly_anchor", param=f"{prefix}[monthly_anchor]", minimum=1, maximum=31
        )
        if schedule["interval"] == "monthly":
            if month_anchor is None and "monthly_anchor" not in schedule:
                raise missing_param(f"{prefix}[monthly_anchor]")
            if month_anchor is not None:
                schedule["monthly_anchor"] = month_anchor
        return schedule

    @staticmethod
    def _business_profile(params: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        raw = get_dict(params, "business_profile")
        check_allowed(raw, BUSINESS_PROFILE_PARAMS, "business_profile")
        profile = dict(current)
        for key in BUSINESS_PROFILE_PARAMS:
            if key in raw:
                profile[key] = get_str(raw, key, param=f"business_profile[{key}]", max_length=5000)
        return profile

    @staticmethod
    def _email(params: dict[str, Any]) -> str | None:
        email = get_str(params, "email", max_length=800)
        if email and not EMAIL_PATTERN.match(email):
            raise invalid_request(f"Invalid email address: {email}", param="email", code="email_invalid")
        return email

    @staticmethod
    def _business_type(params: dict[str, Any]) -> str | None:
        value = get_str(params, "business_type")
        if value is not None and value not in BUSINESS_TYPES:
            raise invalid_request(
                f"Invalid business_type: must be one of {', '.join(BUSINESS_TYPES)}", param="business_type"
            )
        return value

    @staticmethod
    def _controller(params: dict[str, Any]) -> dict[str, Any]:
        """Return the account's ``controller`` from ``type=express`` or controller properties."""
        account_type = get_str(params, "type")
        raw = get_dict(params, "controller")
        if account_type and raw:
            raise invalid_request(
                "You cannot specify both `type` and `controller`. Use one or the other.", param="controller"
            )
        express = {
            "fees": {"payer": "application"},
            "is_controller": True,
            "losses": {"payments": "application"},
            "requirement_collection": "stripe",
            "stripe_dashboard": {"type": "express"},
            "type": "application",
        }
        if account_type:
            if account_type != "express":
                raise invalid_request(
                    f"The embedded Stripe supports Express accounts only (`type=express`), not `{account_type}`.",
                    param="type",
                )
            return express
        if not raw:
            raise invalid_request(
                "The embedded Stripe supports Express accounts only: pass `type=express` or "
                "`controller[stripe_dashboard][type]=express`.",
                param="type",
            )
        check_allowed(raw, {"stripe_dashboard", "fees", "losses", "requirement_collection"}, "controller")
        dashboard = get_dict(raw, "stripe_dashboard", param="controller[stripe_dashboard]")
        dashboard_type = get_str(dashboard, "type", param="controller[stripe_dashboard][type]")
        if dashboard_type != "express":
            raise invalid_request(
                "The embedded Stripe supports Express dashboards only: "
                "`controller[stripe_dashboard][type]=express`.",
                param="controller[stripe_dashboard][type]",
            )
        fees = get_str(
            get_dict(raw, "fees", param="controller[fees]"), "payer", param="controller[fees][payer]"
        )
        losses = get_str(
            get_dict(raw, "losses", param="controller[losses]"),
            "payments",
            param="controller[losses][payments]",
        )
        if fees not in (None, "application") or losses not in (None, "application"):
            raise invalid_request(
                "Express accounts need `controller[fees][payer]=application` and "
                "`controller[losses][payments]=application`.",
                param="controller",
            )
        collection = get_str(raw, "requirement_collection", param="controller[requirement_collection]")
        if collection not in (None, "stripe"):
            raise invalid_request(
                "Express accounts need `controller[requirement_collection]=stripe`.",
                param="controller[requirement_collection]",
            )
        return express

    # -- accounts ----------------------------------------------------------

    def create(self, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/accounts``: a new Express account waiting for onboarding."""
        check_allowed(params, CREATE_PARAMS)
        controller = self._controller(params)
        country = get_str(params, "country") or "US"
        if country not in COUNTRY_CURRENCY:
            raise invalid_request(
                f"Country '{country}' is unknown. Try using a 2-character alphanumeric country code instead, "
                "such as 'US', 'EG', or 'GB'.",
                param="country",
            )
        currency = get_str(params, "default_currency") or COUNTRY_CURRENCY[country]
        if currency != COUNTRY_CURRENCY[country]:
            raise invalid_request(
                f"Invalid default_currency for {country}: {currency}", param="default_currency"
            )
        capabilities = self._capabilities(params, {})
        if "transfers" not in capabilities:
            raise invalid_request(
                "Express accounts must request the `transfers` capability: pass "
                "`capabilities[transfers][requested]=true`.",
                param="capabilities[transfers]",
            )
        business_type = self._business_type(params)
        account_id = new_id("acct", 16)
        created = self.store.now()
        due = [r for r in ONBOARDING_REQUIREMENTS if not (r == "business_type" and business_type)]
        schedule = self._payout_schedule(params, {"delay_days": DEFAULT_DELAY_DAYS, "interval": "daily"})
        data: dict[str, Any] = {
            "id": account_id,
            "object": ACCOUNT,
            "business_profile": self._business_profile(
                params,
                {
                    "annual_revenue": None,
                    "estimated_worker_count": None,
                    "mcc": None,
                    "minority_owned_business_designation": None,
                    "name": None,
                    "product_description": None,
                    "support_address": None,
                    "support_email": None,
                    "support_phone": None,
                    "support_url": None,
                    "url": None,
                },
            ),
            "business_type": business_type,
            "capabilities": capabilities,
            "charges_enabled": False,
            "controller": controller,
            "country": country,
            "created": created,
            "default_currency": currency,
            "details_submitted": False,
            "email": self._email(params),
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/accounts/{account_id}/external_accounts",
            },
            "future_requirements": requirements(),
            "metadata": get_metadata(params),
            "payouts_enabled": False,
            "requirements": requirements(due, "requirements.past_due"),
            "settings": {
                "bacs_debit_payments": {"display_name": None, "service_user_number": None},
                "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
                "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
                "card_payments": {
                    "decline_on": {"avs_failure": False, "cvc_failure": False},
                    "statement_descriptor_prefix": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
                "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": "offer"},
                "payments": {
                    "statement_descriptor": None,
                    "statement_descriptor_kana": None,
                    "statement_descriptor_kanji": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "payouts": {
                    "debit_negative_balances": True,
                    "schedule": schedule,
                    "statement_descriptor": None,
                },
                "sepa_debit_payments": {},
            },
            "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
            "type": "express",
        }
        with self.store.db.transaction():
            # The first automatic payout comes a day after the account opens, then one per period
            # (as Stripe's schedule): never the instant funds become available, which would also make
            # a balance read right after a sale depend on the sweeper's timing.
            first_payout = self.store.now() + FIRST_PAYOUT_DELAY_SECONDS
            self.store.insert(
                ACCOUNT, data, internal={"next_payout_at": first_payout, "bank_account_number": None}
            )
        return data

    def retrieve(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/accounts/{id}``."""
        check_allowed(params, {"expand"})
        return self.require(account_id).data

    def update(self, account_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``POST /v1/accounts/{id}``: metadata, email, business type/profile, payout schedule,
        capabilities to request. Emits ``account.updated`` when something changed."""
        check_allowed(params, UPDATE_PARAMS)
        with self.store.db.transaction():
            record = self.require(account_id)
            data = record.data
            before = copy.deepcopy(data)
            data["metadata"] = update_metadata(data["metadata"], params)
            if "email" in params:
                data["email"] = self._email(params)
            if "business_type" in params:
                data["business_type"] = self._business_type(params)
                due = [r for r in data["requirements"]["currently_due"] if r != "business_type"]
                if data["requirements"]["currently_due"] != due:
                    data["requirements"] = requirements(due, data["requirements"]["disabled_reason"])
            if "business_profile" in params:
                data["business_profile"] = self._business_profile(params, data["business_profile"])
            if "settings" in params:
                payouts = data["settings"]["payouts"]
                payouts["schedule"] = self._payout_schedule(params, payouts["schedule"])
            if "capabilities" in params:
                caps = self._capabilities(params, data["capabilities"])
                if data["details_submitted"] and data["charges_enabled"]:
                    caps = {name: "active" for name in caps}
                data["capabilities"] = caps
            if data != before:
                self.store.update(record)
                self.store.emit(
                    "account.updated", data, request, account=record.id, previous=changes_since(before, data)
                )
            return data

    def delete(self, account_id: str, params: dict[str, Any], request: RequestInfo) -> dict[str, Any]:
        """``DELETE /v1/accounts/{id}``: a test account can always be deleted."""
        check_allowed(params, set())
        with self.store.db.transaction():
            record = self.require(account_id)
            self.store.db.delete(ACCOUNT, record.id)
        return {"id": record.id, "object": ACCOUNT, "deleted": True}

    def list_accounts(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/accounts`` (newest first; ``limit``, ``starting_after``, ``ending_before``, ``created``)."""
        check_allowed(params, {"limit", "starting_after", "ending_before", "created", "expand"})
        created = created_filter(params)
        records, has_more = self.store.page_of(ACCOUNT, params, accept=lambda record: created(record.created))
        return [r.data for r in records], has_more

    # -- account links and login links --------------------------------------

    def create_account_link(self, params: dict[str, Any], base_url: str) -> dict[str, Any]:
        """``POST /v1/account_links``: a single-use onboarding URL valid for 300 seconds."""
        check_allowed(
            params,
            {"account", "type", "refresh_url", "return_url", "collect", "collection_options", "expand"},
        )
        account_id = get_str(params, "account", required=True)
        link_type = get_str(params, "type", required=True)
        if link_type not in ("account_onboarding", "account_update"):
            raise invalid_request(
                "Invalid type: must be one of account_onboarding, account_update", param="type"
            )
        if link_type == "account_update":
            raise invalid_request(
                "You cannot create `account_update` type Account Links for Express accounts; "
                "use `account_onboarding` (or a login link to the Express dashboard).",
                param="type",
            )
        refresh_url = _url(params, "refresh_url")
        return_url = _url(params, "return_url")
        collect = get_str(params, "collect") or "currently_due"
        if collect not in ("currently_due", "eventually_due"):
            raise invalid_request(
                "Invalid collect: must be one of currently_due, eventually_due", param="collect"
            )
        record = self.require(account_id)
        created = self.store.now()
        token = random_token(32)
        data = {
            "object": ACCOUNT_LINK,
            "created": created,
            "expires_at": created + LINK_TTL_SECONDS,
            "url": f"{base_url}/connect/onboarding/{token}",
        }
        with self.store.db.transaction():
            self.store.insert(
                ACCOUNT_LINK,
                {"id": token, "created": created},
                internal={
                    "account": record.id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "expires_at": data["expires_at"],
                    "opened_at": None,
                    "submitted": False,
                    "public": data,
                },
            )
        return data

    def create_login_link(self, account_id: str, params: dict[str, Any], base_url: str) -> dict[str, Any]:
        """``POST /v1/accounts/{id}/login_links``: the Express dashboard of an onboarded account."""
        check_allowed(params, {"expand"})
        record = self.require(account_id, param="account")
        if not record.data["details_submitted"]:
            raise invalid_request(
                "Cannot create a login link for an account that has not completed onboarding.",
                param="account",
            )
        created = self.store.now()
        token = random_token(32)
        data = {"object": LOGIN_LINK, "created": created, "url": f"{base_url}/connect/express/{token}"}
        with self.store.db.transaction():
            self.store.insert(
                LOGIN_LINK,
                {"id": token, "created": created},
                internal={"account": record.id, "expires_at": created + LINK_TTL_SECONDS},
            )
        return data

    def open_onboarding(self, token: str) -> tuple[Literal["open", "refresh", "missing"], Record | None]:
        """Open an Account Link (GET of its URL): the first visit within 300 s opens the form;
        a used or expired link sends the seller to ``refresh_url``.

        Returns:
            ``open`` with the link, ``refresh`` with the link, or ``missing``.
        """
        with self.store.db.transaction():
            link = self.store.get(ACCOUNT_LINK, token)
            if link is None or self.get(link.internal["account"]) is None:
                return "missing", None
            internal = link.internal
            now = self.store.now()
            if internal["submitted"] or internal["opened_at"] is not None or internal["expires_at"] <= now:
                return "refresh", link
            internal["opened_at"] = now
            self.store.update(link)
            return "open", link

    def onboarding_form_open(self, link: Record) -> bool:
        """Tell whether an opened link's form can still be submitted."""
        opened = link.internal["opened_at"]
        return (
            not link.internal["submitted"]
            and opened is not None
            and opened + ONBOARDING_FORM_TTL_SECONDS > self.store.now()
        )

    def submit_onboarding_link(
        self, token: str, form: OnboardingForm
    ) -> tuple[OnboardingResult, Record | None]:
        """Handle the hosted form's "Agree and submit" for the link ``token``."""
        with self.store.db.transaction():
            link = self.store.get(ACCOUNT_LINK, token)
            if link is None or not self.onboarding_form_open(link):
                return OnboardingResult(False, {"": "This onboarding link has expired."}), link
            result = self.submit_onboarding(link.internal["account"], form)
            if result.ok:
                link.internal["submitted"] = True
                self.store.update(link)
            return result, link

    def login_link_account(self, token: str) -> Record | None:
        """Return the account a valid (unexpired) login link opens, or None."""
        link = self.store.get(LOGIN_LINK, token)
        if link is None or link.internal["expires_at"] <= self.store.now():
            return None
        return self.get(link.internal["account"])

    # -- onboarding ----------------------------------------------------------

    def submit_onboarding(self, account_id: str, form: OnboardingForm) -> OnboardingResult:
        """Apply an onboarding submission to the account (hosted form or local helper).

        Emits ``account.updated`` on the account when the flags or requirements change.
        """
        errors = validate_onboarding(form)
        if errors:
            return OnboardingResult(False, errors)
        with self.store.db.transaction():
            record = self.get(account_id)
            if record is None:
                raise resource_missing(ACCOUNT, account_id, param="account")
            data = record.data
            before = copy.deepcopy(data)
            now = self.store.now()
            id_number = re.sub(r"[\s-]", "", form.id_number)
            account_number = form.account_number.strip()
            outcome: Outcome = "complete"
            if form.dob.strip() == REJECTED_DOB:
                outcome = "rejected"
            elif id_number in DOCUMENT_REQUIRED_ID_NUMBERS:
                outcome = "document_required"
            data["details_submitted"] = True
            data["email"] = data["email"] or form.email.strip()
            data["business_type"] = data["business_type"] or "individual"
            profile = data["business_profile"]
            profile["url"] = form.business_url.strip()
            profile["mcc"] = profile["mcc"] or "5734"
            profile["name"] = profile["name"] or f"{form.first_name.strip()} {form.last_name.strip()}"
            data["tos_acceptance"] = {
                "date": now,
                "ip": form.ip or None,
                "user_agent": form.user_agent or None,
            }
            bank_id = new_id("ba", 24)
            data["external_accounts"] = {
                "object": "list",
                "data": [
                    {
                        "id": bank_id,
                        "object": "bank_account",
                        "account": record.id,
                        "account_holder_name": f"{form.first_name.strip()} {form.last_name.strip()}",
                        "account_holder_type": "individual",
                        "available_payout_methods": ["standard", "instant"],
                        "bank_name": "STRIPE TEST BANK",
                        "country": data["country"],
                        "currency": data["default_currency"],
                        "default_for_currency": True,
                        "fingerprint": random_token(16),
                        "last4": account_number[-4:],
                        "metadata": {},
                        "routing_number": form.routing_number.strip(),
                        "status": "new",
                    }
                ],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/accounts/{record.id}/external_accounts",
            }
            record.internal["bank_account_number"] = account_number
            caps = data["capabilities"]
            if outcome == "rejected":
                data["charges_enabled"] = False
                data["payouts_enabled"] = False
                data["capabilities"] = {name: "inactive" for name in caps}
                data["requirements"] = requirements([], "rejected.listed")
            elif outcome == "document_required":
                data["charges_enabled"] = True
                data["payouts_enabled"] = False
                data["capabilities"] = {name: "active" for name in caps}
                data["requirements"] = requirements(["individual.verification.document"])
            else:
                data["charges_enabled"] = True
                data["payouts_enabled"] = True
                data["capabilities"] = {name: "active" for name in caps}
                data["requirements"] = requirements()
            self.store.update(record)
            if data != before:
                self.store.emit(
                    "account.updated",
                    data,
                    NO_REQUEST,
                    account=record.id,
                    previous=changes_since(before, data),
                )
            return OnboardingResult(True, account=data, outcome=outcome)

    def bank_account_failed(self, record: Record) -> None:
        """After a failed payout, as on Stripe: the bank account is ``errored``, payouts
        are disabled and ``external_account`` is due again (``account.updated``)."""
        data = record.data
        before = copy.deepcopy(data)
        for bank in data["external_accounts"]["data"]:
            bank["status"] = "errored"
        data["payouts_enabled"] = False
        data["requirements"] = requirements(
            sorted({*data["requirements"]["currently_due"], "external_account"}),
            data["requirements"]["disabled_reason"],
        )
        self.store.update(record)
        self.store.emit(
            "account.updated", data, NO_REQUEST, account=record.id, previous=changes_since(before, data)
        )

    def payout_failure(self, record: Record) -> tuple[str, str] | None:
        """Return ``(failure_code, message)`` when the account's test bank account fails payouts."""
        return PAYOUT_FAILURES.get(record.internal.get("bank_account_number") or "")


def _url(params: dict[str, Any], key: str) -> str:
    url = get_str(params, key, required=True, max_length=5000)
    assert url is not None
    if not re.match(r"^https?://[^\s/]+", url):
        raise invalid_request("Not a valid URL", param=key, code="url_invalid")
    return url
