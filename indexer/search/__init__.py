"""The read side: the engine that answers search, related, similar and lists from published artifacts."""
