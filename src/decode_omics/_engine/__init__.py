"""The private engine shared by :mod:`decode_omics.pp`, :mod:`decode_omics.tl` and :mod:`decode_omics.model`.

Plain arrays in, plain arrays out: reading matrices and their scale (:mod:`.scale`, :mod:`.ondisk`), feature names
(:mod:`.features`), label codes and light AnnData views (:mod:`.adata`), and the one pseudo-tissue generator
(:mod:`.pseudotissues`, built on the vectorised mixing blocks of :mod:`.mixing` and :mod:`.kernels`). Nothing here
imports torch or scvi-tools. Not public API: names may change without notice.
"""
