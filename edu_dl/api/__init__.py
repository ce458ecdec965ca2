"""The REST API (Django REST framework), with xAPI and LTI beside it."""
