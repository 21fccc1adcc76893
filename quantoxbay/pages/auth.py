"""Sign up `/signup`, log in `/login`, "Forgot password?" `/forgot-password`, the e-mailed
reset link `/reset-password` and the verification link `/verify-email`."""

from __future__ import annotations

import reflex as rx

from quantoxbay import routes
from quantoxbay.components.layout import page
from quantoxbay.state.auth_forms import AuthFormState
from quantoxbay.state.recovery import ForgotPasswordState, ResetPasswordState, VerifyEmailState


def _field(
    label: str, name: str, type_: str, autocomplete: str, *, until_loaded: bool = False
) -> rx.Component:
    """A labelled form input. ``until_loaded``: disabled until the page's state has hydrated, for a
    form whose page may show an earlier answer instead (what is typed before then would be lost)."""
    return rx.vstack(
        rx.el.label(label, html_for=name, style={"fontWeight": 500, "fontSize": "14px"}),
        rx.input(
            id=name,
            name=name,
            type=type_,
            required=True,
            auto_complete=autocomplete,
            size="3",
            width="100%",
            disabled=~rx.State.is_hydrated if until_loaded else False,
        ),
        spacing="1",
        width="100%",
    )


def _error() -> rx.Component:
    return rx.cond(
        AuthFormState.error != "",
        rx.callout(
            AuthFormState.error, icon="triangle-alert", color_scheme="red", role="alert", width="100%"
        ),
    )


def _card(title: str, subtitle: rx.Component, form: rx.Component) -> rx.Component:
    return page(
        rx.center(
            rx.card(
                rx.vstack(
                    rx.heading(title, size="6", as_="h1"), subtitle, _error(), form, spacing="4", width="100%"
                ),
                size="4",
                width="100%",
                max_width="26em",
            ),
            width="100%",
        ),
    )


def login_page() -> rx.Component:
    return _card(
        "Log in",
        rx.text("New here? ", rx.link("Create an account", href=routes.SIGNUP), size="2"),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "email"),
                _field("Password", "password", "password", "current-password"),
                rx.link("Forgot password?", href=routes.FORGOT_PASSWORD, size="2"),
                rx.button("Log in", type="submit", size="3", width="100%", loading=AuthFormState.busy),
                spacing="4",
                width="100%",
            ),
            on_submit=AuthFormState.log_in,
            reset_on_submit=False,
        ),
    )


def signup_page() -> rx.Component:
    return _card(
        "Create your account",
        rx.text("Already have one? ", rx.link("Log in", href=routes.LOGIN), size="2"),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "email"),
                _field("Password", "password", "password", "new-password"),
                rx.text("At least 8 characters.", size="1", color=rx.color("gray", 10)),
                rx.el.label(
                    rx.hstack(
                        rx.checkbox(name="wants_to_sell", id="wants_to_sell"),
                        rx.text("I want to sell", size="2"),
                        spacing="2",
                        align="center",
                    ),
                    html_for="wants_to_sell",
                ),
                rx.button(
                    "Create account", type="submit", size="3", width="100%", loading=AuthFormState.busy
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=AuthFormState.sign_up,
            reset_on_submit=False,
        ),
    )


def forgot_password_page() -> rx.Component:
    return _card(
        "Reset your password",
        rx.text(
            "Enter your account's e-mail address and we will send you a link to choose a new password.",
            size="2",
        ),
        rx.cond(
            ForgotPasswordState.sent_message != "",
            rx.vstack(
                rx.callout(
                    ForgotPasswordState.sent_message, icon="mail", color_scheme="green", role="status"
                ),
                rx.button(
                    "Send another link",
                    variant="soft",
                    on_click=ForgotPasswordState.clear_request,
                    width="100%",
                ),
                rx.link("Back to log in", href=routes.LOGIN, size="2"),
                spacing="3",
                width="100%",
            ),
            rx.form(
                rx.vstack(
                    _field("Email", "email", "email", "email", until_loaded=True),
                    rx.button(
                        "Send reset link",
                        type="submit",
                        size="3",
                        width="100%",
                        loading=AuthFormState.busy,
                        disabled=~rx.State.is_hydrated,
                    ),
                    rx.link("Back to log in", href=routes.LOGIN, size="2"),
                    spacing="4",
                    width="100%",
                ),
                on_submit=ForgotPasswordState.request_link,
                reset_on_submit=False,
            ),
        ),
    )


def reset_password_page() -> rx.Component:
    return _card(
        "Choose a new password",
        rx.cond(
            ResetPasswordState.link_ok,
            rx.text(
                "For ",
                rx.text.strong(ResetPasswordState.link_email),
                ". You will be logged out everywhere else.",
                size="2",
            ),
            rx.fragment(),
        ),
        rx.cond(
            ResetPasswordState.link_ok,
            rx.form(
                rx.vstack(
                    _field("New password", "password", "password", "new-password"),
                    rx.text("At least 8 characters.", size="1", color=rx.color("gray", 11)),
                    rx.button(
                        "Set new password", type="submit", size="3", width="100%", loading=AuthFormState.busy
                    ),
                    spacing="4",
                    width="100%",
                ),
                on_submit=ResetPasswordState.set_password,
                reset_on_submit=False,
            ),
            rx.cond(
                ResetPasswordState.link_checked,
                rx.link("Ask for a new link", href=routes.FORGOT_PASSWORD, size="2"),
                rx.spinner(),
            ),
        ),
    )


def verify_email_page() -> rx.Component:
    return page(
        rx.center(
            rx.card(
                rx.vstack(
                    rx.heading("E-mail verification", size="6", as_="h1"),
                    rx.cond(
                        VerifyEmailState.done,
                        rx.cond(
                            VerifyEmailState.verified,
                            rx.callout(
                                VerifyEmailState.message,
                                icon="circle-check",
                                color_scheme="green",
                                role="status",
                            ),
                            rx.callout(
                                VerifyEmailState.message,
                                icon="triangle-alert",
                                color_scheme="red",
                                role="alert",
                            ),
                        ),
                        rx.spinner(),
                    ),
                    rx.link("Go to your seller dashboard", href=routes.SELLER, size="2"),
                    spacing="4",
                    width="100%",
                ),
                size="4",
                width="100%",
                max_width="26em",
            ),
            width="100%",
        ),
    )
