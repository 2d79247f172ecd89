"""Channels routing, consumers and event publishing. Filled by the realtime issue."""
