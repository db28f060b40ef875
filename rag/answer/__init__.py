"""Question time, second step: the question analysed, its candidate sentences read, the answer composed."""
