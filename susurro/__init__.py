"""Susurro: end-to-end encrypted group chat over a blind relay.

The subpackages live in folders at the repository root (``protocol/``,
``crypto/``, ``relay/``, ``client/``, ``transport/``) and are installed under
this one name by the ``package-dir`` mapping in ``pyproject.toml``, so that
nothing of ours lands in site-packages as a bare ``crypto`` or ``protocol``
(both are unrelated PyPI distributions).
"""

from .compiled import install

__all__ = ["__version__"]

# Before any submodule can be imported: a compiled module whose source changed
# since the build must not load (susurro/compiled.py).
install()

__version__ = "0.1.0"
