"""Path inference: what file and folder names say about a book, as pure functions."""
