"""Rectangle (PyPI ``rectanglepy`` 1.7.0; Eder, ..., Finotello, bioRxiv, as its README cites it) in its own venv.

As its documentation (quick-start notebook, ``rectangle()`` docstring): "The scRNA-seq data must come in the form of
unnormalized gene counts, together with the associated cell-type annotations [...]. The bulk RNA-seq data should be
normalized as transcripts per million (TPM)"; one call, ``rectangle(adata, bulks, "cell_type", n_cpus=1)``, with every
other argument at its default (cut-off grid search, mRNA-bias correction, unknown-content correction with the
cohort-level positive-residual rule, expression threshold 0.4, 20 bootstraps). Its ``Unknown`` column is returned as
``unknown``. Rectangle seeds itself (numpy seeds 42 and 1 inside), so the benchmark's seed changes nothing.

- Reference: the raw single-cell counts as an AnnData (integers, as the tutorial's ``sc_counts.astype("int")``), the
  cell type in ``obs["cell_type"]``.
- Bulk: TPM cohorts are passed as they are, count cohorts as CPM (no gene lengths are available; its docs allow CPM
  for tag-based data); both per million over every feature the bulk measured.
- Rectangle re-normalises the bulk to a total of 1e6 over the columns it is given and estimates the unknown content
  from that total; the exchange holds only the features shared with the reference. So that the bulk is normalised
  over all its features, as when the whole bulk is passed (the tutorial passes the full Finotello TPM table), the
  expression of the bulk's other features is passed as one extra column ``__other_features__``; it matches no
  reference gene, so Rectangle uses it for that total only (option ``other_features``: false drops it).

- Tasks whose reference is not RNA-seq counts (``params["is_rna"]`` false: metabolomics, proteomics, log-scale or
  already-normalised references such as scanpy's pbmc68k_reduced) are refused with exit code 3 ("does not apply"):
  Rectangle's signature step runs DESeq2 (pydeseq2, negative-binomial counts) on pseudo-bulk sums cast to integers
  and takes its mRNA-bias factors from the number of genes each cell expresses, so it is defined on raw counts only.
  ``Peer(needs_rna=True)`` checks feature names only and lets UniProt accessions through.

No patch; Rectangle's model and estimator are unchanged.

    python run_rectanglepy.py EXCHANGE_FOLDER
"""

import sys

import numpy as np
import pandas as pd
from _exchange import cpm, load, log, require_rna_counts, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed_everything(int(params["seed"]))
opts = params.get("options", {})
log(
    f"rectanglepy: reference {reference.shape} ({params['reference_scale']}), bulk {bulk.shape} "
    f"({params['bulk_scale']})"
)

require_rna_counts(params, "Rectangle")

from anndata import AnnData  # noqa: E402
from rectanglepy import rectangle  # noqa: E402

counts = reference.to_numpy(dtype=np.float64)
if np.allclose(counts, np.rint(counts)):
    counts = np.rint(counts).astype(np.int64)
else:
    log("rectanglepy: the reference is not integer counts; passed as it is")
adata = AnnData(counts, obs=pd.DataFrame({"cell_type": pd.Categorical(labels.to_numpy())}, index=reference.index))
adata.var_names = reference.columns

libsize = np.asarray(params["bulk_libsize"], dtype=np.float64)
bulks = pd.DataFrame(cpm(bulk.to_numpy(), libsize), index=bulk.index, columns=bulk.columns)
if opts.get("other_features", True):
    other = 1e6 - bulks.sum(axis=1)
    bulks["__other_features__"] = other.clip(lower=0)
    log(f"rectanglepy: shared features hold {100 * (1 - other.mean() / 1e6):.1f}% of the bulk's expression (mean)")

estimations, _ = rectangle(adata, bulks, "cell_type", n_cpus=1)
estimations = estimations.rename(columns={"Unknown": "unknown"}).loc[bulk.index]
log(f"rectanglepy: mean fractions\n{estimations.mean().round(3).to_string()}")
save(folder, estimations)
log("rectanglepy: done")
