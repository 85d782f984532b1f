"""The HTTP and WebSocket surface (FastAPI): validates, authorises, calls services."""
