"""The Anthropic Messages API front: /v1/messages (streamed or not) and /v1/messages/count_tokens."""
