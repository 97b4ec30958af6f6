"""The SQL base every domain declares its tables on (no dependency on any domain)."""
