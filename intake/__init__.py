"""Intake: how a call or a fax becomes a work order.

An answered call is recorded by Asterisk (MixMonitor, each side apart and mixed), transcribed
with Vosk after hangup and drafted as a work order for the operator; a received fax becomes a
work order of channel "fax". Recordings are deleted after the configured retention.
"""
