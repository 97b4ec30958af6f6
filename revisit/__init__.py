"""Revisit calls (回访): after a reviewed reply (or a direct answer), the hotline calls the
citizen back through one outbound dialer and asks whether the matter is resolved and how
satisfied they are."""
