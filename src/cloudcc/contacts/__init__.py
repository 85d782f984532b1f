"""Contacts: the one model for every channel, its legs and call control, joining SIP, media,
routing and the IVR into the calls the product exists for."""
