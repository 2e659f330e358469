"""Everything NextGen-facing that the δ models share: the crosswalk of names and units
(:mod:`.crosswalk`), the realization writer (:mod:`.realization`) and the replay driver that runs a
realization the way ngen does (:mod:`.replay`, console script ``ngen-replay``)."""
