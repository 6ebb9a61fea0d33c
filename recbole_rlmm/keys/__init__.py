"""The configuration keys: declared once, checked before RecBole reads them, documented from the
declarations.

* :mod:`.choices`: the allowed values of choice keys (importing it costs nothing);
* :mod:`.schema`: every key's type, range, default and meaning (:data:`~.schema.OVERALL_KEYS`,
  :data:`~.schema.MODEL_KEYS`) and the defaults derived from them;
* :mod:`.sources`: where a run's keys come from (yaml files, ``config_dict``, the command line);
* :mod:`.values`: value checks (one :class:`~recbole_rlmm.errors.ConfigError` line each);
* :mod:`.unread`: warnings for keys a user set that no part of the run reads;
* :mod:`.docs`: the generated ``properties/*.yaml`` and the key tables of docs/.
"""
