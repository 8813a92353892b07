"""Quality measurements (retrieval, keyphrases) shared by the `papers eval` commands and benchmarks."""
