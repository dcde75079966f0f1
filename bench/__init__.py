"""Benchmarks of mox against the classic stack (Postfix delivering over LMTP into Dovecot).

Scripts, not part of the wheel: `python -m bench --help`, or `nox -s bench`. See bench/README in
the project README's "Benchmarks" section and bench/PROFILE.md for profiles of the hot paths.
"""
