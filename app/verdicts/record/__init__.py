"""The verdict record: its tables, statements, and the writer that commits them."""
