"""Short-answer and essay grading: text models, dataset readers and their evaluation."""
