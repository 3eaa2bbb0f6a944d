"""Test-only parts of the server, included in the app only when the settings enable them."""
