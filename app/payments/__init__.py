"""The Stripe gateway and localstripe helpers: the only place that talks to Stripe."""
