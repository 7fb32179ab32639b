"""Slow, obvious pure-Python references; the tests treat them as truth."""
