"""The OpenAI API front: /v1 chat, completions, embeddings, models."""
