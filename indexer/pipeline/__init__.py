"""The write side above ingestion: build, nightly, the index lock, embedding progress, verification."""
