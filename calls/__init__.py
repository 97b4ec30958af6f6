"""Call records: every call's IVR journey, from the first ring to the hangup cause."""
