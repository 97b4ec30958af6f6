"""The web service: health, call records, statistics and the supervisors' screen."""
