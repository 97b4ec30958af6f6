"""Accounts: the people (and their machines) who use the web pages and the staff API."""
