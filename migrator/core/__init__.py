"""The core every layer shares: messages, folders, content keys, errors, sizes and text for the terminal."""
