"""Machine learning for edu_dl: PyTorch and numpy only, nothing from Django or the rest of the app.

It knows sequences, texts, tensors and files, never database rows; the services turn rows into the
plain data defined here and back. It could be published as a library of its own.
"""
