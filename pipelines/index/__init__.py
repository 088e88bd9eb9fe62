"""The Beam indexing job: catalog -> decode -> encode (RunInference) -> window tokens -> store."""
