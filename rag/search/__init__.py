"""Question time, first step: the passages that may answer, from FAISS and BM25 or from Milvus."""
