"""The seller pages' notice while the account's e-mail address is not verified yet."""

from __future__ import annotations

import reflex as rx

from quantoxbay.state.recovery import EmailVerificationState
from quantoxbay.state.session import SessionState


def verify_email_notice() -> rx.Component:
    """ "Verify your e-mail address first" with a "Resend verification e-mail" button; nothing once
    the address is verified (publishing and payouts are refused until then)."""
    return rx.cond(
        SessionState.is_logged_in & ~SessionState.email_verified,
        rx.callout.root(
            rx.callout.icon(rx.icon("mail-warning")),
            rx.vstack(
                rx.callout.text(
                    rx.text.strong("Verify your e-mail address first. "),
                    "Open the link we sent to ",
                    rx.text.strong(SessionState.email),
                    " to publish products and set up payouts. Buying works already.",
                ),
                rx.button(
                    "Resend verification e-mail",
                    on_click=EmailVerificationState.resend,
                    variant="outline",
                    size="2",
                ),
                spacing="2",
                align="start",
            ),
            color_scheme="amber",
            role="status",
            width="100%",
        ),
    )
