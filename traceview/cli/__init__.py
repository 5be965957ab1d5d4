"""Command-line surface: parse arguments, call the library, render. Nothing is computed here."""
