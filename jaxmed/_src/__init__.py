"""Private implementation of jaxmed. Import the public API from ``jaxmed``."""
