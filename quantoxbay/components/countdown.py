"""A live countdown to a deadline, ticking in the browser (no server round trips).

The element carries the deadline (epoch milliseconds) in ``data-qb-deadline``; one small
script, installed once per tab by :data:`COUNTDOWN_SCRIPT` (``rx.call_script``), rewrites
every such element each second. When a deadline passes it clicks the element's hidden
"ended" button, so the page asks the server again (which decides the price, not this timer).
"""

from __future__ import annotations

import reflex as rx

COUNTDOWN_SCRIPT = """
(function () {
  if (window.__qbCountdown) { return; }
  function pad(n) { return String(n).padStart(2, "0"); }
  function format(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400); s %= 86400;
    var h = Math.floor(s / 3600); s %= 3600;
    var m = Math.floor(s / 60); s %= 60;
    return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  function tick() {
    document.querySelectorAll("[data-qb-deadline]").forEach(function (el) {
      var deadline = Number(el.getAttribute("data-qb-deadline"));
      if (!deadline) { return; }
      var left = deadline - Date.now();
      el.textContent = format(left);
      if (left <= 0 && el.getAttribute("data-qb-ended") !== String(deadline)) {
        el.setAttribute("data-qb-ended", String(deadline));
        var button = document.getElementById(el.getAttribute("data-qb-on-end"));
        if (button) { setTimeout(function () { button.click(); }, 300); }
      }
    });
  }
  window.__qbCountdown = setInterval(tick, 1000);
  tick();
})();
"""


def countdown(deadline_ms: rx.Var, on_end: rx.EventHandler, *, label: str, element_id: str) -> rx.Component:
    """``label`` + a ticking "1d 02:03:04"; ``on_end`` runs once the deadline passes."""
    return rx.hstack(
        rx.icon("timer", size=16),
        rx.text(label, size="2"),
        rx.el.span(
            role="timer",
            aria_label=label,
            aria_live="off",
            custom_attrs={"data-qb-deadline": deadline_ms, "data-qb-on-end": element_id + "-ended"},
            style={"font_variant_numeric": "tabular-nums", "font_weight": "600"},
            id=element_id,
        ),
        rx.el.button(
            id=element_id + "-ended", on_click=on_end, hidden=True, tab_index=-1, aria_hidden="true"
        ),
        spacing="2",
        align="center",
        color=rx.color("red", 11),
    )
