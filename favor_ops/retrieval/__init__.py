"""Cross-modal retrieval: MiniLM text tower, retrieval heads, aligned FAVOR checkpoints, queries, metrics."""
