"""The service layer: what the API (and the CLI demo) call. It writes intent, never calls a cloud."""
