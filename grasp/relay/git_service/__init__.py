"""The git service (S10.5, S10.6, S15.3, S16.1): smart HTTP for the relay's repositories through
the real ``git http-backend``, push authorisation before receive-pack, placeholder quotas, the
repository landing pages, and GRASP-06 contributor repositories under ``/prs/``."""
