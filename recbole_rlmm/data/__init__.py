"""Dataset files: the folder contract (:mod:`.format`), atomic writes (:mod:`.io`) and the
item feature loader (:mod:`.features`)."""
