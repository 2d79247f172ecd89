"""Plans, limits and Stripe (public schema). Filled by the billing issue."""
