"""Plugin models; each lives in its own module and is resolved by :func:`recbole_rlmm.get_model`."""
