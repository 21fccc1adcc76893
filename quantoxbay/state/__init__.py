"""Reflex states: thin. They call services (in a worker thread) and hold what pages show."""
