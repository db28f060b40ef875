"""Evaluation of retrieval, answer and abstention quality over Q&A sets."""
