"""Sign-in, sessions and the one permission check used by every callback."""
