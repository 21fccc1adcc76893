"""The ``Stripe-Version`` request header.

The embedded Stripe serves one version's shapes: :data:`~.config.API_VERSION`
(the one stripe-python 16.1 pins). For any other header value:

* not a Stripe API version (malformed, a date Stripe released no version on, a
  release name that does not exist, a date after the pinned version): 400
  ``invalid_request_error`` "Invalid Stripe API version: X", as Stripe answers;
* a real, older version: the request is served with the pinned version's
  shapes, and the response says so: its ``Stripe-Version`` header names the
  pinned version (the one actually served, not the one asked for) and
  ``Stripe-Version-Served-Instead-Of`` names the requested one. Nothing is
  translated to the older shapes.

Dated versions before the named release trains (2024-09-30.acacia) are checked
against :data:`DATED_VERSIONS`; versions before 2017 are accepted on their
date's form alone. Named versions (``YYYY-MM-DD.name``) need a known release
name and a date not after the pinned version's.
"""

from __future__ import annotations

import datetime
import re

from .config import API_VERSION
from .errors import invalid_request

#: Stripe's dated API versions from 2017 until the named release trains began.
DATED_VERSIONS = frozenset(
    {
        "2017-01-27",
        "2017-02-14",
        "2017-04-06",
        "2017-05-25",
        "2017-06-05",
        "2017-08-15",
        "2017-12-14",
        "2018-01-23",
        "2018-02-05",
        "2018-02-06",
        "2018-02-28",
        "2018-05-21",
        "2018-07-27",
        "2018-08-23",
        "2018-09-06",
        "2018-09-24",
        "2018-10-31",
        "2018-11-08",
        "2019-02-11",
        "2019-02-19",
        "2019-03-14",
        "2019-05-16",
        "2019-08-14",
        "2019-09-09",
        "2019-10-08",
        "2019-10-17",
        "2019-11-05",
        "2019-12-03",
        "2020-03-02",
        "2020-08-27",
        "2022-08-01",
        "2022-11-15",
        "2023-08-16",
        "2023-10-16",
        "2024-04-10",
        "2024-06-20",
    }
)

#: Release names, in order, up to the pinned version's.
RELEASE_NAMES = ("acacia", "basil", "clover", "dahlia", "endive")
FIRST_NAMED = datetime.date(2024, 9, 30)
_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.([a-z]+))?")

#: The response header that names a requested version served with the pinned shapes.
SERVED_INSTEAD_HEADER = "Stripe-Version-Served-Instead-Of"


def _date(version: str) -> tuple[datetime.date, str | None] | None:
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    try:
        day = datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return day, match[4]


def is_known_version(version: str) -> bool:
    """Tell whether ``version`` is a Stripe API version (see the module docstring)."""
    parsed = _date(version)
    pinned = _date(API_VERSION)
    if parsed is None or pinned is None:
        return False
    day, name = parsed
    if day > pinned[0]:
        return False
    if name is None:
        if day >= FIRST_NAMED:
            return False
        return day.year < 2017 or version in DATED_VERSIONS
    return day >= FIRST_NAMED and name in RELEASE_NAMES


def check_version(requested: str | None) -> dict[str, str]:
    """Check a request's ``Stripe-Version`` and return the response headers saying what is served.

    Raises:
        StripeLocalError: 400 "Invalid Stripe API version: X" for an unknown version.
    """
    headers = {"Stripe-Version": API_VERSION}
    value = (requested or "").strip()
    if not value or value == API_VERSION:
        return headers
    if not is_known_version(value):
        raise invalid_request(f"Invalid Stripe API version: {value}")
    headers[SERVED_INSTEAD_HEADER] = value
    return headers
