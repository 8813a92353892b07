"""Dense search: embedders, the vector store, HNSW/exact indexes."""
