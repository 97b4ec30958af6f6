"""Asterisk 22 as the hotline's PBX: the cached root, this instance, its config, its AMI."""
