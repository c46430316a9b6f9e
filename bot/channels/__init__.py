"""Channel adapters: translate between a chat platform and the chat-neutral core."""
