"""Delivery limits shared by the engine (which counts messages still to be retried against
the weekly caps) and delivery (which retries them)."""

# A failed send is tried again by the next deliveries, up to this many attempts in all.
MAX_ATTEMPTS = 3
