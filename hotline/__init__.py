"""Composition root of hotline12345: settings, wiring, command line."""
