"""A password hasher for the tests: PBKDF2 with one iteration instead of a million.

Every persona a test creates, and every ``client.login``, hashes a password; with
Django's default (1,000,000 iterations, ~0.5 s here) that was most of the suite's
time. Password strength is not under test. The algorithm name stays
``pbkdf2_sha256`` and the iteration count is stored in each hash, so a server
started in another process with the project's own settings (the browser tests'
daphne) still verifies these passwords.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
