"""BayesPrism (PyPI ``pybayesprism`` 0.1.0, the Python port of Chu et al. 2022) in its own venv.

As the BayesPrism tutorial: raw single-cell counts as the reference (cell type = cell state, no tumour key),
genes filtered as ``cleanUp.genes(gene.group = c("Rb", "Mrp", "other_Rb", "chrM", "MALAT1", "chrX", "chrY"),
exp.cells = 5)`` and ``select.gene.type("protein_coding")``, ``new.prism(outlier.cut = 0.01, outlier.fraction = 0.1)``,
``run.prism(update.gibbs = TRUE)`` with its default Gibbs settings (chain 1000, burn-in 500, thinning 2) and the
benchmark's seed; the fractions are the final (updated-reference) theta.

Fixes (FINDINGS §5), none of which changes the model:
- pybayesprism's Gibbs sampler draws one ``np.random.multinomial`` per gene in a Python loop (hours); the two sampling
  functions are replaced by the same sampler drawing all genes at once with pybayesprism's own vectorised
  ``gibbs.multinomial_rvs`` (the line its authors left commented out);
- the gene filter is done here with pybayesprism's own gene lists (``txt/genelist.hs.new.txt``,
  ``txt/gencode.v22.broad.category.txt``), because its ``cleanup_genes`` crashes on gene symbols; it is applied only
  to RNA tasks with gene symbols;
- the bulk is rounded to integers (the sampler draws counts; TPM bulks are count-like in scale).

    python run_bayesprism.py EXCHANGE_FOLDER
"""

import os
import sys

import numpy as np
import pandas as pd
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
seed_everything(seed)
opts = params.get("options", {})
log(f"BayesPrism: reference {reference.shape}, bulk {bulk.shape}, seed {seed}")

import pybayesprism  # noqa: E402
from pybayesprism import joint_post, prism, theta_post  # noqa: E402
from pybayesprism.gibbs import GibbsSampler, multinomial_rvs  # noqa: E402


def _draw_Z(X_n, phi, theta):
    prob = phi * theta[:, np.newaxis]  # K x G
    pvals = (prob / prob.sum(axis=0, keepdims=True)).T  # G x K
    return multinomial_rvs(X_n.copy(), pvals)


def sample_Z_theta_n(X_n, phi, alpha, gibbs_idx, seed=None, compute_elbo=False):
    """GibbsSampler.sample_Z_theta_n, all genes drawn at once."""
    if seed is not None:
        np.random.seed(seed)  # noqa: NPY002 - as pybayesprism does
    phi = phi.to_numpy()
    G, K = phi.shape[1], phi.shape[0]
    X_n = np.rint(np.asarray(X_n)).astype(np.int64)
    theta_n_i = np.repeat(1 / K, K)
    Z_n_sum = np.zeros((G, K))
    theta_n_sum = np.zeros(K)
    theta_n2_sum = np.zeros(K)
    keep = set(int(i) for i in gibbs_idx)
    for i in range(np.max(gibbs_idx)):
        Z_n_i = _draw_Z(X_n, phi, theta_n_i)
        Z_nk_i = Z_n_i.sum(axis=0)
        theta_n_i = GibbsSampler.rdirichlet(alpha=Z_nk_i + alpha)
        if i in keep:
            Z_n_sum += Z_n_i
            theta_n_sum += theta_n_i
            theta_n2_sum += theta_n_i**2
    n = len(gibbs_idx)
    theta_n = theta_n_sum / n
    return {
        "Z_n": Z_n_sum / n,
        "theta_n": theta_n,
        "theta.cv_n": np.sqrt(np.maximum(theta_n2_sum / n - theta_n**2, 0)) / theta_n,
        "gibbs.constant": 0.0,
    }


def sample_theta_n(X_n, phi, alpha, gibbs_idx, seed=None):
    """GibbsSampler.sample_theta_n, all genes drawn at once."""
    out = sample_Z_theta_n(X_n, phi, alpha, gibbs_idx, seed)
    return {"theta_n": out["theta_n"], "theta.cv_n": out["theta.cv_n"]}


def run_gibbs_refPhi(self, final, compute_elbo):
    """GibbsSampler.run_gibbs_refPhi, serial (n.cores = 1), and naming the final theta's columns by cell type:
    pybayesprism 0.1.0 passes the gene names there (``ThetaPost.new(X.index, X.columns, ...)``) and crashes."""
    phi = self.reference.phi
    X = self.X.to_numpy()
    control = self.gibbs_control
    gibbs_idx = GibbsSampler.get_gibbs_idx(control)
    args = (phi, control["alpha"], gibbs_idx, control["seed"])
    if not final:
        out = [sample_Z_theta_n(X[i, :], *args, compute_elbo) for i in range(X.shape[0])]
        return joint_post.JointPost.new(self.X.index, self.X.columns, phi.index, out)
    out = [sample_theta_n(X[i, :], *args) for i in range(X.shape[0])]
    return theta_post.ThetaPost.new(self.X.index, phi.index, out)


GibbsSampler.run_gibbs_refPhi = run_gibbs_refPhi
GibbsSampler.sample_Z_theta_n = staticmethod(sample_Z_theta_n)
GibbsSampler.sample_theta_n = staticmethod(sample_theta_n)
GibbsSampler.estimate_gibbs_time = lambda self, final, chain_length=50: None  # a timing print only

ref = reference.astype(np.float64)
mix = bulk.astype(np.float64).round()
if params.get("is_rna"):
    txt = os.path.join(os.path.dirname(pybayesprism.__file__), "txt")
    groups = ["Rb", "Mrp", "other_Rb", "chrM", "MALAT1", "chrX", "chrY"]
    gl = pd.read_table(os.path.join(txt, "genelist.hs.new.txt"), sep="\t", header=None)
    genes = ref.columns.astype(str)
    ensembl = np.mean([g.startswith("ENS") for g in genes]) > 0.8
    short = pd.Index([g.split(".")[0] for g in genes]) if ensembl else pd.Index(genes)
    bad = set(gl.loc[gl[0].isin(groups), 1 if ensembl else 2].dropna().astype(str))
    keep = ~short.isin(bad)
    log(f"BayesPrism: {int((~keep).sum())} genes in {groups} excluded")
    keep &= (ref > 0).sum(axis=0).to_numpy() >= 5
    gc = pd.read_table(os.path.join(txt, "gencode.v22.broad.category.txt"), sep="\t", header=None)
    coding = set(gc.loc[gc[8] == "protein_coding", 7 if ensembl else 4].astype(str))
    keep &= short.isin(coding)
    log(f"BayesPrism: {int(keep.sum())} protein-coding genes expressed in >= 5 cells kept")
    ref, mix = ref.loc[:, keep], mix.loc[:, keep]

cell_types = list(labels.to_numpy())
my_prism = prism.Prism.new(
    reference=ref,
    mixture=mix,
    input_type="count.matrix",
    cell_type_labels=cell_types,
    cell_state_labels=cell_types,
    key=None,
    outlier_cut=0.01,
    outlier_fraction=0.1,
)
gibbs_control = {"seed": seed, "n.cores": 1}
if "chain.length" in opts:
    gibbs_control.update({"chain.length": opts["chain.length"], "burn.in": opts["chain.length"] // 2})
bp = my_prism.run(n_cores=1, update_gibbs=True, gibbs_control=gibbs_control)
theta = bp.posterior_theta_f.theta
save(folder, theta.loc[bulk.index])
log("BayesPrism: done")
