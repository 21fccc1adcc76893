"""One module per page or area."""
