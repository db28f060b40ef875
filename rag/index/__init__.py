"""The index on disk: its tables, vectors and BM25 columns, written at build time and read at question time."""
