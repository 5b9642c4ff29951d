"""Where each file of the public-data loaders comes from: its deposit, download URL and SHA-256 (one table).

SHA-256 computed with ``sha256sum`` on the project's ``../shared/data``; byte identity with the public file checked
against git blob hashes of each repository at the pinned commit. :mod:`._registry` finds, caches and downloads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    """One file read by a loader, with its public source and checksum.

    Parameters
    ----------
    folder
        Data-set folder (as in ``shared/data/<folder>``).
    name
        File name inside ``folder``.
    sha256
        SHA-256 of the file as it is in the project's shared data folder (the copy the tests were written against).
    deposit
        Landing page of the original public deposit (repository, commit and path; the primary archive in brackets).
    base_url
        URL of the deposit folder that holds the file; the download URL is ``base_url + (remote_name or name)``.
        ``None`` when the file was converted from the deposit and no public file has these bytes.
    remote_name
        Name of the file in the deposit, when it differs from ``name``.
    download_sha256
        SHA-256 of the public file, when it differs from ``sha256`` (the shared copy was re-encoded, not converted).
        ``None``: the public file is byte-identical to the shared copy, so ``sha256`` is checked on download.
    note
        What the shared copy is, relative to the deposit.
    sources
        For a converted file: ``(url, sha256)`` of each public deposit file it was converted from.
    """

    folder: str
    name: str
    sha256: str
    deposit: str
    base_url: str | None = None
    remote_name: str | None = None
    download_sha256: str | None = None
    note: str = ""
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """``"<folder>/<name>"``, the key of the registry."""
        return f"{self.folder}/{self.name}"

    @property
    def url(self) -> str | None:
        """The download URL, or ``None`` for a file converted from the deposit."""
        if self.base_url is None:
            return None
        return self.base_url.rstrip("/") + "/" + (self.remote_name or self.name)

    @property
    def known_hash(self) -> str | None:
        """The checksum pooch verifies on download (``"sha256:<hex>"``), or ``None`` without a URL."""
        if self.url is None:
            return None
        return "sha256:" + (self.download_sha256 or self.sha256)

    @property
    def public_copy(self) -> bool:
        """Whether the shared copy is byte-identical to the public file (then ``sha256`` is the public file's)."""
        return self.url is not None and self.download_sha256 is None


# --------------------------------------------------------------------------------------------------------------------
# the registry (SHA-256 computed with `sha256sum` on ../shared/data; byte identity checked against git blob hashes
# of each repository at the pinned commit)
# --------------------------------------------------------------------------------------------------------------------
_GH = "https://github.com"
_RAW = "https://raw.githubusercontent.com"

_SC_MIXOLOGY = f"{_RAW}/LuyiTian/sc_mixology/7d00ffb0bd043467f365a9358d7312f294f13c9f/data/csv/"
_SC_MIXOLOGY_DEPOSIT = (
    f"{_GH}/LuyiTian/sc_mixology/tree/7d00ffb0bd043467f365a9358d7312f294f13c9f/data/csv "
    "(Tian et al. 2019; GEO GSE118767)"
)
_LUTE = (
    f"{_RAW}/LieberInstitute/deconvo_lute-paper/fcca31b336e486b4a4b455d671285513b392ddf1/"
    "cohort3/data/monaco_et_al_2019/manuscript/"
)
_DECODE = f"{_RAW}/forceworker/DECODE/a88c9d1c8ed033112addf5eb86eb56c74677cd8f/data/bone_marrow_mb/"
_SCPROTEIN = (
    f"{_RAW}/TencentAILabHealthcare/scPROTEIN/571cb88c2ee6e859f6df008ae24044010f7d34cd/"
    "downstream_application/cell_cycle_analysis/data/"
)
_SCPDECONV = f"{_RAW}/TencentAILabHealthcare/scpDeconv/052335317cd3cf813253195438666249ba0452bd/data/murine_cellline/"
_SCPDECONV_DEPOSIT = (
    f"{_GH}/TencentAILabHealthcare/scpDeconv/tree/052335317cd3cf813253195438666249ba0452bd/data/murine_cellline"
)

_QUASAR = "SergejRuff/QuasarDeconData/238c771c3c8b13a9d70eee47647b63a718175e2b"
_MUDAN = "JEFworks/MUDAN/3636ed2f9a404cbdfcfdce5500384b59a72de666"
_METAPROVIZ = "saezlab/MetaProViz/2e4abc14cecd32d37416a1f3723f6930db699c79"
_CITEFUSE = "SydneyBioX/CiteFuse/b6075864d8930967946022fdfbbf57a6a120061f"

_COPY = "byte-for-byte copy of the public file"

_CELLBENCH_SHA256 = {
    "RNAmix_celseq2.count.csv.gz": "3bc1323f10f74779e69f068cbfd052633049745f69107bba4133368a01ec24b9",
    "RNAmix_celseq2.metadata.csv.gz": "b4dfd97335bb24691d22b16748410d42ea08c7dee634d2d9d2584ef2d9e60956",
    "RNAmix_sortseq.count.csv.gz": "81a2c15fc0fc1216328fa348ad3375b0b2faa604fce9811330b78a190cdfd3d0",
    "RNAmix_sortseq.metadata.csv.gz": "1ea8edd24736c3efdf7dec102e42b01b75df18a811084cfcfd2ea5c87b89fead",
    "cellmix1.count.csv.gz": "2314388ff780a38ac75283725dfd0251c0c59daa0923f7ec887047d5c627de81",
    "cellmix1.metadata.csv.gz": "57aaba0d4e62c9c5c681351faaf53357dc35d61f3cdffb1257d49a93b769b9a0",
    "cellmix2.count.csv.gz": "036373ee198547186101d4d12bd25a4e83ca0949b49e00ac07c924d11cd82da1",
    "cellmix2.metadata.csv.gz": "1bc1b7ecc7420e4d0f53c3f5ffa3c80f03f7c030088f1730439948fdefe924d0",
    "cellmix3.count.csv.gz": "50584c71d220e005197f138793b85bcb20261b0b89bdcbe555d1e74ab2f7d340",
    "cellmix3.metadata.csv.gz": "99f77877713e4562bfaf7fd108e4252b0d129152a45a20537b2ba5228cbb8d74",
    "cellmix4.count.csv.gz": "60567bb82e31a7da1923d3365309f829bf8723e86a8aeec8b6270eb966af0d8b",
    "cellmix4.metadata.csv.gz": "f449dc8f12ccc24f55d169ae30fd65e886a2c1928758a670dfa5fab6b56535f1",
    "cellmix5.count.csv.gz": "94bc13bf2f3ce1a7951304aea6f0f51a6bf116e39370f03447a0db5d56d0edd8",
    "cellmix5.metadata.csv.gz": "cc27258f17d16fa4a2e676996e941c19fdc66a9d4d417a9f55fa3536d16e9a03",
    "sc_celseq2.count.csv.gz": "a82aa89b8995aed412f4260c0adb343967e33a801af6f2e0aa647c1d897a5a21",
    "sc_celseq2.metadata.csv.gz": "78429916bac394d92d8c972059a8f195c5479ce578da04f1eb3ba599585ef3d9",
    "sc_dropseq.count.csv.gz": "98c0bb6a9fbf4b93967ef82cef9985d7691cf59a31dc5b0b3699f70ed1a0fd08",
    "sc_dropseq.metadata.csv.gz": "4c48f3e13778e89192d9861095bc102cc0deb9eba1a7f47a093f5a058ce1aa6a",
}


def _derived(folder: str, name: str, sha256: str, deposit: str, note: str, sources: dict[str, str]) -> DataFile:
    return DataFile(folder, name, sha256, deposit=deposit, note=note, sources=tuple(sources.items()))


# SHA-256 of the public R files the converted files were made from (at the pinned commits)
_RDA_SHA256 = {
    f"{_RAW}/{_QUASAR}/data/GSE107011.rda": "f10b7cb50b6a0308555e44d580b51ebdb99a9e851fd3e4cc93a11107e619073b",
    f"{_RAW}/{_QUASAR}/data/GSE107572.rda": "f165bb4f94906045c4d474a47ebf9066d50f3c91e408a06fef8fc713b95669be",
    f"{_RAW}/{_MUDAN}/data/referenceCounts.rda": "d44df269ab223db35a3ac0f46a08f623b61ffd46f44f110b34910724b932a8d6",
    f"{_RAW}/{_MUDAN}/data/referenceAnnot.rda": "72ac3b67cb1f831c23a9ecc094451d93901a8f2ba30fa1089704482e5cb76865",
    f"{_RAW}/{_CITEFUSE}/data/CITEseq_example.rda": "ff1063648dcef1220bfc0575dd107892e3d1af5017d441f2e5dcfb7dc7693ee6",
    f"{_RAW}/{_METAPROVIZ}/data/intracell_raw.rda": "492b1ea7c987b3ca700390913a4341adc19a857c58cdd6133c08d67cd2e348ec",
    f"{_RAW}/{_METAPROVIZ}/data/tissue_norm.rda": "54dbeb393bc07f93ac59ff2207fd7038adacac52419cd4e1b9c3003699705387",
}


def _rda(*urls: str) -> dict[str, str]:
    return {u: _RDA_SHA256[u] for u in urls}


_FILES: list[DataFile] = [
    # ---------------------------------------------------------------- byte-for-byte copies of public files
    *(
        DataFile("cellbench_lung_mixtures", name, sha, _SC_MIXOLOGY_DEPOSIT, _SC_MIXOLOGY, note=_COPY)
        for name, sha in _CELLBENCH_SHA256.items()
    ),
    DataFile(
        "monaco2019_pbmc",
        "flow_cytometry_true_cell_type_proportions_s13.csv",
        "8ad585dd61fda9041ff9d2eb96efdc6527190451e96fd873548cc4e8569e16ba",
        deposit=(
            f"{_GH}/LieberInstitute/deconvo_lute-paper/blob/fcca31b336e486b4a4b455d671285513b392ddf1/cohort3/data/"
            "monaco_et_al_2019/manuscript/flow_cytometry_true_cell_type_proportions_s13.csv "
            "(Table S6 of Monaco et al. 2019, Cell Reports; GEO GSE107011)"
        ),
        base_url=_LUTE,
        download_sha256="0eb772b7f3eb285a6450870c462bffea2630374738495bfe725bd6a04b9bb687",
        note=(
            "re-encoded: the public file starts with a UTF-8 byte-order mark (4,784 bytes), the shared copy has it "
            "removed (4,781 bytes); the parsed table is identical. The download is checked against the public file."
        ),
    ),
    DataFile(
        "scm_bone_marrow_decode",
        "bone_marrow.h5ad",
        "c0ab78196e113cd34616eb1c7c0843a23440b42fa4ff127537153ce8368cb181",
        deposit=(
            f"{_GH}/forceworker/DECODE/blob/a88c9d1c8ed033112addf5eb86eb56c74677cd8f/data/bone_marrow_mb/"
            "bone_marrow.h5ad (Zhao et al. 2026, Nat Methods)"
        ),
        base_url=_DECODE,
        note=_COPY,
    ),
    DataFile(
        "scp_cellcycle_tscp",
        "T-SCP.h5ad",
        "7e2fe2a1f0ee33e685634e126c73d37928b86066ed14c6698620df95ac93e0b2",
        deposit=(
            f"{_GH}/TencentAILabHealthcare/scPROTEIN/blob/571cb88c2ee6e859f6df008ae24044010f7d34cd/"
            "downstream_application/cell_cycle_analysis/data/T-SCP.h5ad"
        ),
        base_url=_SCPROTEIN,
        note=_COPY,
    ),
    DataFile(
        "scp_murine_cellline",
        "murine_N2_SCP.h5ad",
        "72a3610b2784b9ad1cef66cf028f7994c5d8a55bcdb4e717eabcefe0ee989434",
        _SCPDECONV_DEPOSIT,
        _SCPDECONV,
        note=_COPY,
    ),
    DataFile(
        "scp_murine_cellline",
        "murine_N2_SCP_meta.csv",
        "d49e9e4cbfda6799980f99810dfc21152e50e8ce0bd07cea9f7f76d5b93881a5",
        _SCPDECONV_DEPOSIT,
        _SCPDECONV,
        note=_COPY,
    ),
    DataFile(
        "scp_murine_cellline",
        "murine_nanoPOTS_SCP.h5ad",
        "2cf51f68cbbb96c73eccef18c0e2519ab89bacb2631ee582b7150e5821b8aed2",
        _SCPDECONV_DEPOSIT,
        _SCPDECONV,
        note=_COPY,
    ),
    DataFile(
        "scp_murine_cellline",
        "murine_nanoPOTS_SCP_meta.csv",
        "a3be3cf9e8ceb1db642b639d481e8b6a439855bb39054f22937e47e8920c4af7",
        _SCPDECONV_DEPOSIT,
        _SCPDECONV,
        note=_COPY,
    ),
    # ---------------------------------------------------------------- converted from R objects: no public URL
    _derived(
        "pbmc_sorted_10x_mudan",
        "pbmc_sorted_10x_ref.h5ad",
        "0584fa3d850e019dcad91b95d76c5dd4fe98de4ecd24662d18e36ddff6a43c34",
        f"{_GH}/{_MUDAN.replace('/3636', '/tree/3636')}/data (10x Genomics purified PBMC, Zheng et al. 2017)",
        f"converted from {_RAW}/{_MUDAN}/data/referenceCounts.rda (integer UMI counts, genes x cells) and "
        f"{_RAW}/{_MUDAN}/data/referenceAnnot.rda (sorted population per cell): read both with the `rdata` package, "
        "write cells x genes as float32 CSR with obs['cell_type'] to an h5ad file",
        _rda(f"{_RAW}/{_MUDAN}/data/referenceCounts.rda", f"{_RAW}/{_MUDAN}/data/referenceAnnot.rda"),
    ),
    *(
        _derived(
            "pbmc_flow_quasar",
            f"{cohort}_{part}",
            sha,
            f"{_GH}/{_QUASAR.replace('/238c', '/tree/238c')}/data (GEO {cohort})",
            f"converted from {_RAW}/{_QUASAR}/data/{cohort}.rda (an R list): read it with the `rdata` package "
            "(`rdata.read_rda(f)`); write `bulk_expression_profiles` (genes x samples, gene symbols as index"
            + ("; the list's `ensembl_ids` as column `ensembl_ids`" if cohort == "GSE107011" else "")
            + f") to {cohort}_bulk.csv.gz and `ground_truth_proportions` (samples x cell types) to "
            f"{cohort}_ground_truth.csv",
            _rda(f"{_RAW}/{_QUASAR}/data/{cohort}.rda"),
        )
        for cohort, part, sha in [
            ("GSE107011", "bulk.csv.gz", "8dbf1e290d4b3b89b050202e260a166ea96864076948b30d5ba5b9a0aafce666"),
            ("GSE107011", "ground_truth.csv", "6aca5be723e9a8da40bf1fc9376ee7852dff453b1c87e08683040766def5a3d7"),
            ("GSE107572", "bulk.csv.gz", "dae8ec0cb6a576bbc0c4ef9c02b3d2736682e115d6b721771be9b8d81d0c995e"),
            ("GSE107572", "ground_truth.csv", "ffb2e283fa32e27403657d88c40b1208aed2cd6ef5f0d7fd80dbecfe1d35f350"),
        ]
    ),
    *(
        _derived(
            "metaboprofiles_kidney_metaproviz",
            f"{stem}.csv.gz",
            sha,
            f"{_GH}/{_METAPROVIZ.replace('/2e4a', '/tree/2e4a')}/data ({primary})",
            f"converted from {_RAW}/{_METAPROVIZ}/data/{stem}.rda (an R data frame): read it with the `rdata` "
            f"package and write it, rows = samples, with the sample code as column `Code`, to {stem}.csv.gz",
            _rda(f"{_RAW}/{_METAPROVIZ}/data/{stem}.rda"),
        )
        for stem, sha, primary in [
            (
                "intracell_raw",
                "ba5816c7a5f85b2f4c2f2d98508219115022cf913220bfa995b207356fe6d07b",
                "Metabolomics Workbench PR001418 / ST002224",
            ),
            (
                "tissue_norm",
                "5606443845f9e9888c60e91e45e1bffa22dc2e93771f26050f451b90ccd2d3d2",
                "Supplementary Table 2 of Hakimi et al. 2016, Cancer Cell",
            ),
        ]
    ),
    *(
        _derived(
            "citeseq_eccite_pbmc_citefuse",
            f"eccite_pbmc_{modality}.h5ad",
            sha,
            f"{_GH}/{_CITEFUSE.replace('/b607', '/tree/b607')}/data (Mimitou et al. 2019; GEO GSE126310)",
            f"converted from {_RAW}/{_CITEFUSE}/data/CITEseq_example.rda (an R list of dgCMatrix RNA, ADT, HTO): "
            f"read it with the `rdata` package (each matrix comes as its i/p/x/Dim/Dimnames slots: a features x cells "
            f"CSC matrix); write the {modality} matrix as cells x features, with the 4 HTO "
            "counts as obs columns HTO_<name>, to an h5ad file",
            _rda(f"{_RAW}/{_CITEFUSE}/data/CITEseq_example.rda"),
        )
        for modality, sha in [
            ("RNA", "90a46284bffcbccd883347a97e0f7e9fed890020d7b33c977c08bce7c7988c9b"),
            ("ADT", "376a7d7c3cf807726f92bae22c5cbea9aaa7b8216a6f9c5f17369c8a9d83919e"),
        ]
    ),
]

#: Every file a loader reads, keyed by ``"<folder>/<name>"``.
REGISTRY: dict[str, DataFile] = {f.key: f for f in _FILES}
