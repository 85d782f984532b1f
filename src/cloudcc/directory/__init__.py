"""The tenant's contact-center directory: agents, skill queues, numbers, trunks, hours."""
