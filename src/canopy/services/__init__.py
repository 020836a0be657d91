"""The service layer that the API and the CLI call: it writes intent, never calls a cloud."""
