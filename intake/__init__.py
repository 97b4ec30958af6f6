"""Intake: how a call or a fax becomes a work order.

An answered call is recorded by Asterisk (MixMonitor started by the dialplan, each side apart
and mixed), transcribed with Vosk after hangup and drafted as a work order for the operator,
exactly once, through a durable outbox that survives a database down and a crash; a received
fax becomes a work order of channel "fax". Recordings are deleted after the configured
retention.
"""
