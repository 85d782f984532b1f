"""Voicemail: mailboxes (one per queue or agent) and the messages callers leave in them."""
