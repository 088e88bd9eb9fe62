"""Training stages of favor: `align` (retrieval: text <-> windows, audio <-> video)."""
