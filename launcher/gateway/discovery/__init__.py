"""The discovery front: /register, /registry and /route, and registering with another gateway."""
