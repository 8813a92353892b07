"""Text: tokenizer (the only jieba caller), Chinese-English terms, keywords, snippets. Imports nothing above it."""
